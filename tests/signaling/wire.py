"""In-test signalling: two aiortc peers exchange `signal` data through in-order queues,
without the server's rooms (the TURN and negotiation tests depend on nothing else)."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling.peers.media import FrameSink, PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.negotiation import Negotiator

PATTERN = TestPattern("test", 320, 240)


class Side:
    """One peer: its negotiator, what it decoded, and the states it went through."""

    def __init__(
        self,
        name: str,
        polite: bool,
        ice_servers: list[dict[str, Any]],
        relay_only: bool,
        audio_only: bool = False,
    ):
        self.name = name
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sink = FrameSink()
        self.states: list[str] = []
        self.changed = asyncio.Event()
        self.other: Side | None = None
        self.sent: list[dict[str, Any]] = []
        self.negotiator = Negotiator(
            polite=polite,
            ice_servers=ice_servers,
            send=self._send,
            tracks=lambda: (
                [ToneAudioTrack()] if audio_only else [PatternVideoTrack(PATTERN), ToneAudioTrack()]
            ),
            relay_only=relay_only,
            on_state=self._state,
            on_track=self.sink.add,
            name=name,
        )
        self.pump: asyncio.Task[None] | None = None

    async def _send(self, data: dict[str, Any]) -> None:
        self.sent.append(data)
        assert self.other is not None
        self.other.inbox.put_nowait(data)

    def _state(self, state: str) -> None:
        self.states.append(state)
        self.changed.set()

    async def wait_state(self, state: str, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.negotiator.state != state:
                self.changed.clear()
                await self.changed.wait()

    async def _pump(self) -> None:
        while True:
            await self.negotiator.handle(await self.inbox.get())

    def start(self) -> None:
        self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)
        await self.sink.close()
        await self.negotiator.close()


def pair(
    ice_a: list[dict[str, Any]],
    ice_b: list[dict[str, Any]],
    relay_only: bool = False,
    start: bool = True,
    audio_only_counsellor: bool = False,
) -> tuple[Side, Side]:
    """An impolite side (the counsellor) and a polite side (the interpreter), wired.

    With start=False the signals wait in the inboxes until both sides' `start()`: a test
    can then make both sides offer before either hears the other (deterministic glare).
    """
    impolite = Side("counsellor", False, ice_a, relay_only, audio_only_counsellor)
    polite = Side("interpreter", True, ice_b, relay_only)
    impolite.other, polite.other = polite, impolite
    if start:
        impolite.start()
        polite.start()
    return impolite, polite
