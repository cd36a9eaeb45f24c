"""The simulated interpreter: a headless interpreter for the demo and the load tests.

It logs in, goes available, accepts offers (after an optional delay), answers the call
with a test pattern showing the call's language and a running clock plus a beeping tone,
hangs up after an optional duration, and comes back by itself after network loss or a
server restart (the socket reconnects; live calls rejoin their rooms).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiortc import MediaStreamTrack

from infra.tasks import Tasks
from signaling.peers.call import RETRYABLE, CallPeer
from signaling.peers.client import ApiError, TolkClient
from signaling.peers.media import PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.negotiation import Tracks
from signaling.peers.room import RoomPeer

log = structlog.get_logger(__name__)

ACCEPT_RETRY_MAX_S = 8.0
"""An accept answered `unavailable` is tried again, waiting up to this long in between
(0.5 + 1 + ... + 8 s: about an offer's lifetime)."""


@dataclass(frozen=True)
class SimOptions:
    """How a simulated interpreter behaves."""

    url: str
    username: str
    password: str
    languages: tuple[str, ...] = ()
    """Shown on the test pattern when the call's language is unknown; else the profile's."""
    accept_delay_s: float = 0.0
    hangup_after_s: float | None = None
    video_size: tuple[int, int] = (640, 480)


@dataclass
class SimInterpreter:
    """One simulated interpreter; `run()` until cancelled."""

    options: SimOptions
    client: TolkClient = field(init=False)
    calls: dict[str, CallPeer] = field(default_factory=dict)
    rooms: dict[str, RoomPeer] = field(default_factory=dict)
    """Segments of consultation rooms this interpreter is in, by call id."""
    accepted: int = 0
    _seen_offers: set[str] = field(default_factory=set)
    _tasks: Tasks = field(default_factory=Tasks)

    def __post_init__(self) -> None:
        o = self.options
        self.client = TolkClient(o.url, o.username, o.password)
        self._log = log.bind(username=o.username)

    async def run(self) -> None:
        """Log in (waiting for the server), go available, and serve offers until cancelled."""
        try:
            # Inside the try: a stop while still waiting for the server closes the session.
            await self._login()
            if not self.options.languages:
                with contextlib.suppress(ApiError):
                    me = await self.client.request("GET", "/api/interpreters/me")
                    langs = tuple(lang["tag"] for lang in me["interpreter"]["languages"])
                    self.options = SimOptions(**{**self.options.__dict__, "languages": langs})
            self.client.on_connected.append(self._go_available)
            self.client.listeners.append(self._on_message)
            await self.client.run_socket()
        finally:
            try:
                for peer in list(self.calls.values()):
                    await peer.close()
                await self._tasks.cancel()
            finally:  # even when a second stop interrupts the calls' closing
                await self.client.close()

    async def _login(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.client.login()
                self._log.info("sim_logged_in")
                return
            except ApiError as exc:
                if exc.status in (401, 403):
                    raise  # wrong password or not allowed: retrying will not help
                self._log.info("sim_login_retry", status=exc.status)
            except OSError as exc:
                self._log.info("sim_login_retry", error=type(exc).__name__)
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, 5.0)

    async def _go_available(self) -> None:
        if self.calls:
            return
        try:
            await self.client.request("PUT", "/api/interpreters/me/status", {"status": "available"})
            self._log.info("sim_available")
        except ApiError as exc:
            self._log.info("sim_not_available", code=exc.code)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "offer":
            offer = message.get("offer") or {}
            offer_id = str(offer.get("id"))
            if offer_id not in self._seen_offers and not self.calls and not self.rooms:
                self._seen_offers.add(offer_id)
                self._tasks.spawn(self._accept(offer))
        elif kind == "call.updated":
            call = message.get("call") or {}
            # After our own restart, the server tells us about a call we are still in.
            mine = (call.get("interpreter") or {}).get("id") == self.client.user.get("id")
            live = call.get("state") in ("connecting", "connected")
            if (
                mine
                and live
                and call.get("id") not in self.calls
                and call.get("id") not in self.rooms
            ):
                self._tasks.spawn(self._take_call(call))

    async def _accept(self, offer: dict[str, Any]) -> None:
        if self.options.accept_delay_s:
            await asyncio.sleep(self.options.accept_delay_s)
        if self.calls or self.rooms:
            return
        delay = 0.5
        while True:
            try:
                body = await self.client.request("POST", f"/api/offers/{offer['id']}/accept")
                break
            except ApiError as exc:
                # 503: the server cannot reach its database for a moment; the offer
                # stands until its deadline, which the server still checks.
                if exc.code != RETRYABLE or delay > ACCEPT_RETRY_MAX_S:
                    self._log.info("sim_accept_refused", offer_id=offer.get("id"), code=exc.code)
                    return
                self._log.info("sim_accept_retry", offer_id=offer.get("id"), delay_s=delay)
            await asyncio.sleep(delay)
            delay *= 2
        self.accepted += 1
        self._log.info("sim_accepted", offer_id=offer.get("id"), call_id=body["call"]["id"])
        await self._take_call(body["call"])

    async def _take_call(self, call: dict[str, Any]) -> None:
        call_id = str(call["id"])
        if call_id in self.calls or call_id in self.rooms:
            return
        label = str(call.get("language") or " ".join(self.options.languages) or "tolk")
        pattern = TestPattern(f"{label} {self.options.username}"[:16], *self.options.video_size)

        audio_only = bool(call.get("audio_only"))

        def tracks() -> list[MediaStreamTrack]:
            # An audio-only call gets a tone and no picture, as a person would send.
            if audio_only:
                return [ToneAudioTrack()]
            return [PatternVideoTrack(pattern), ToneAudioTrack()]

        if call.get("room_id"):
            await self._take_segment(call_id, str(call["room_id"]), tracks)
            return
        peer = CallPeer(self.client, call_id, tracks)
        self.calls[call_id] = peer
        try:
            await peer.join()
            if self.options.hangup_after_s is not None:
                with contextlib.suppress(TimeoutError):
                    # Not wait_for: on Python 3.11 it swallows a stop that comes as the call
                    # ends, and the stopped interpreter would go available again.
                    async with asyncio.timeout(self.options.hangup_after_s):
                        await peer.ended.wait()
                if not peer.ended.is_set():
                    self._log.info("sim_hangup", call_id=call_id)
                    await peer.hangup()
            await peer.ended.wait()
        except Exception:
            self._log.exception("sim_call_failed", call_id=call_id)
        finally:
            await peer.close()
            self.calls.pop(call_id, None)
            # What arrived from the other side: the proof, in the log, that media flowed.
            self._log.info("sim_call_over", call_id=call_id, frames_received=peer.sink.frames)
        # Wrap-up ends by itself on the server; a simulated interpreter is ready at once.
        await self._go_available()

    async def _take_segment(self, call_id: str, room_id: str, tracks: Tracks) -> None:
        """A segment of a consultation room: join the room and keep a link to each other
        participant until the segment ends (hang-up, hand-over, the room's end)."""
        over = asyncio.Event()

        def segment_news(message: dict[str, Any]) -> None:
            call = message.get("call") or {}
            kind, state = message.get("type"), call.get("state")
            if kind == "call.updated" and call.get("id") == call_id and state == "ended":
                over.set()

        self.client.listeners.append(segment_news)
        peer = RoomPeer(self.client, room_id, tracks)
        self.rooms[call_id] = peer
        try:
            await peer.join()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.options.hangup_after_s):
                    await over.wait()
            if not over.is_set():
                self._log.info("sim_leave_room", room_id=room_id)
                await peer.leave()
        except Exception:
            self._log.exception("sim_room_failed", room_id=room_id)
        finally:
            self.client.listeners.remove(segment_news)
            await peer.close()
            self.rooms.pop(call_id, None)
            self._log.info("sim_segment_over", call_id=call_id)
        await self._go_available()


async def run_sim_interpreter(options: SimOptions) -> None:
    """Run one simulated interpreter until cancelled."""
    await SimInterpreter(options).run()
