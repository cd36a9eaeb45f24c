"""A headless participant of one call: joins the room, negotiates media with the other
participant over `signal` messages, reports `call.media`, and recovers from path loss
and from a lost socket or server (rejoin; fresh peer connection where media stopped)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog

from infra.tasks import Tasks
from signaling.peers.client import SocketError, TolkClient
from signaling.peers.media import FrameSink
from signaling.peers.negotiation import Negotiator, Tracks
from signaling.peers.participant import Participant

log = structlog.get_logger(__name__)

REPORTED_STATES = frozenset({"connected", "disconnected", "failed"})
RETRYABLE = "unavailable"
"""The error code of a message the server could not serve for now: ask again."""


class CallPeer(Participant):
    """One side of a call, driven by a `TolkClient` whose socket is already open.

    The impolite side (the counsellor) offers as soon as it joins; the polite side (the
    interpreter) waits for that offer and makes its own only if none comes within
    `polite_offer_after_s`, so the usual call needs one offer and one answer. If media is
    not connected within `reconnect_after_s` of a (re)start, or the path fails, the side
    starts over with a fresh peer connection in the same call.
    """

    def __init__(
        self,
        client: TolkClient,
        call_id: str,
        tracks: Tracks,
        *,
        relay_only: bool = False,
        polite_offer_after_s: float = 2.0,
        reconnect_after_s: float = 10.0,
    ) -> None:
        super().__init__(client, tracks, relay_only=relay_only, log=log.bind(call_id=call_id))
        self.call_id = call_id
        self.sink = FrameSink()
        self.connected = asyncio.Event()
        self.connected_at: float | None = None
        """time.perf_counter() when media first connected."""
        self.peer_present = False
        self.negotiator: Negotiator | None = None
        self._polite_offer_after_s = polite_offer_after_s
        self._reconnect_after_s = reconnect_after_s
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks = Tasks()
        # Held apart from the call's own tasks, which close() cancels: the close itself and
        # the media reports, each kept until done (a task nobody holds may be collected).
        self._after = Tasks()
        self._started_at = time.monotonic()
        self._last_offer_seen = 0.0

    async def join(self) -> None:
        """Send call.join (also after a reconnect); start or resume negotiation."""
        if self.ended.is_set():
            return
        try:
            joined = await self._ask_join()
        except SocketError as exc:
            # The call ended while we were away, or it is not ours: nothing to rejoin.
            self._log.info("call_join_refused", code=exc.code)
            self.ended.set()
            self._after.spawn(self.close())
            return
        self.peer_present = bool(joined.get("peer_present"))
        if self.negotiator is None:
            self.negotiator = Negotiator(
                polite=bool(joined["polite"]),
                ice_servers=list(joined.get("ice_servers") or []),
                send=self._send_signal,
                tracks=self._tracks,
                relay_only=self._relay_only,
                on_state=self._on_state,
                on_track=self.sink.add,
                name=self.client.username,
            )
            self._tasks.spawn(self._pump())
            self._tasks.spawn(self._watch())
            await self._start()
            return
        # A rejoin after the socket or the server came back: media may have kept flowing
        # peer to peer all along; then the room only needs to hear our state again.
        self.negotiator.ice_servers = list(joined.get("ice_servers") or [])
        state = self.negotiator.state
        if state in REPORTED_STATES:
            await self._report(state)
        if state != "connected":
            await self._start()

    async def _ask_join(self) -> dict[str, Any]:
        """call.join, asked again while the server answers `unavailable` (its database is
        out of reach for a moment; the call itself goes on)."""
        delay = 0.5
        while True:
            try:
                return await self.client.ask({"type": "call.join", "call_id": self.call_id})
            except SocketError as exc:
                if exc.code != RETRYABLE or self.ended.is_set():
                    raise
                self._log.info("call_join_retry", code=exc.code, delay_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def _start(self) -> None:
        assert self.negotiator is not None
        self._started_at = time.monotonic()
        if not self.negotiator.polite:
            await self.negotiator.offer()

    async def hangup(self) -> None:
        """Hang up (call.hangup); the room answers with call.updated."""
        with contextlib.suppress(Exception):
            await self.client.send({"type": "call.hangup", "call_id": self.call_id})
        await self.close()

    async def close(self) -> None:
        """Stop media and forget the call."""
        self.ended.set()
        self._detach()
        await self._tasks.cancel()
        if self.negotiator is not None:
            await self.negotiator.close()
        await self.sink.close()

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("call_id") != self.call_id and (
            message.get("type") != "call.updated"
            or (message.get("call") or {}).get("id") != self.call_id
        ):
            return
        kind = message.get("type")
        if kind == "signal":
            self._inbox.put_nowait(message.get("data") or {})
        elif kind == "peer":
            self.peer_present = bool(message.get("present"))
        elif kind == "call.updated" and (message.get("call") or {}).get("state") == "ended":
            self.ended.set()
            self._after.spawn(self.close())

    async def _pump(self) -> None:
        # One consumer keeps the peer's signals in order.
        assert self.negotiator is not None
        while True:
            data = await self._inbox.get()
            description = data.get("description") or {}
            if description.get("type") == "offer":
                self._last_offer_seen = time.monotonic()
            try:
                await self.negotiator.handle(data)
            except Exception:
                self._log.exception("signal_failed")

    async def _watch(self) -> None:
        # Fallbacks, checked once a second: the polite side offers if no offer came; either
        # side starts over when media did not connect in time or the path failed.
        assert self.negotiator is not None
        negotiator = self.negotiator
        while True:
            await asyncio.sleep(0.5)
            since_start = time.monotonic() - self._started_at
            state = negotiator.state
            if state == "connected":
                # The grace for a lost path counts from the last moment media was up.
                self._started_at = time.monotonic()
                continue
            if negotiator.polite and negotiator.pc is None:
                if since_start >= self._polite_offer_after_s and self.peer_present:
                    self._log.info("polite_offer_fallback")
                    self._started_at = time.monotonic()
                    await negotiator.offer()
                continue
            if state == "failed" or since_start >= self._reconnect_after_s:
                if time.monotonic() - self._last_offer_seen < 1.0:
                    continue  # an answer to the peer's fresh offer is on its way
                self._log.info("media_restart", state=state, generation=negotiator.generation)
                self._started_at = time.monotonic()
                await negotiator.offer()

    async def _send_signal(self, data: dict[str, Any]) -> None:
        await self.client.send({"type": "signal", "call_id": self.call_id, "data": data})

    def _on_state(self, state: str) -> None:
        self._log.info("media_state", state=state)
        if state == "connected":
            if self.connected_at is None:
                self.connected_at = time.perf_counter()
            self.connected.set()
        if state in REPORTED_STATES:
            self._after.spawn(self._report(state))

    async def _report(self, state: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.send({"type": "call.media", "call_id": self.call_id, "state": state})
