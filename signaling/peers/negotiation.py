"""W3C "perfect negotiation" for aiortc peers, over Tolk's `signal` messages.

Roles come from `call.joined`: the interpreter is polite, the counsellor impolite. When
both sides offer at once (glare), the impolite side ignores the other's offer and the
polite side gives up its own and answers.

aiortc has neither `rollback` nor `restartIce()`: where a browser would roll back or
restart ICE in place, an aiortc peer answers from a fresh RTCPeerConnection (with fresh
tracks), in the same call. Candidates are in the descriptions (aiortc gathers before
returning them); candidates a browser trickles are added as they come.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from infra.tasks import Tasks
from signaling.peers.rtc import rtc_configuration

log = structlog.get_logger(__name__)

SendSignal = Callable[[dict[str, Any]], Awaitable[None]]
StateListener = Callable[[str], None]
TrackListener = Callable[[MediaStreamTrack], None]
Tracks = Callable[[], list[MediaStreamTrack]]
"""Makes the local tracks afresh, for each new peer connection."""


class Negotiator:
    """One side of a call's WebRTC session; signal data in through `handle`, out via `send`."""

    def __init__(
        self,
        *,
        polite: bool,
        ice_servers: list[dict[str, Any]],
        send: SendSignal,
        tracks: Tracks,
        relay_only: bool = False,
        on_state: StateListener | None = None,
        on_track: TrackListener | None = None,
        name: str = "",
    ) -> None:
        self.polite = polite
        self.ice_servers = ice_servers
        self.relay_only = relay_only
        self._send = send
        self._tracks = tracks
        self._on_state = on_state
        self._on_track = on_track
        self._lock = asyncio.Lock()
        self._closing = Tasks()
        self.pc: RTCPeerConnection | None = None
        self.generation = 0
        """How many peer connections this side has made (1 + restarts)."""
        self.ignored_offers = 0
        self.collisions = 0
        self._log = log.bind(peer=name, polite=polite)

    @property
    def state(self) -> str:
        """The current RTCPeerConnection's connectionState ("new" before the first)."""
        return self.pc.connectionState if self.pc is not None else "new"

    async def offer(self) -> None:
        """Make a fresh connection and offer it (the first offer, or after path loss)."""
        async with self._lock:
            await self._fresh_pc()
            await self._make_offer()

    async def handle(self, data: dict[str, Any]) -> None:
        """Apply one incoming `signal` data object."""
        async with self._lock:
            if "description" in data:
                description = data["description"] or {}
                await self._on_description(
                    str(description.get("type")), str(description.get("sdp"))
                )
            elif "candidate" in data:
                await self._on_candidate(data["candidate"])

    async def close(self) -> None:
        """Close the connection."""
        async with self._lock:
            if self.pc is not None:
                pc, self.pc = self.pc, None
                await pc.close()
        await self._closing.settled()

    async def _on_description(self, kind: str, sdp: str) -> None:
        if kind == "offer":
            pc = self.pc
            collision = pc is not None and pc.signalingState != "stable"
            if collision and not self.polite:
                self.ignored_offers += 1
                self._log.info("offer_ignored", reason="glare")
                return
            if collision:
                self.collisions += 1
            if pc is None or collision or pc.remoteDescription is not None:
                # Glare (polite side), or the peer restarted: aiortc can neither roll back
                # nor restart ICE, so answer from a fresh connection. It carries only the
                # kinds the offer has: aiortc's answer fails (ValueError) on a track the
                # offer has no section for, e.g. video in an audio-only call.
                await self._fresh_pc(media_kinds(sdp))
            assert self.pc is not None
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self._send_local_description()
        elif kind == "answer":
            if self.pc is None or self.pc.signalingState != "have-local-offer":
                # An answer to an offer this side no longer has (it restarted since).
                self._log.info("stale_answer_ignored")
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        else:
            self._log.info("description_ignored", kind=kind)

    async def _on_candidate(self, candidate: dict[str, Any] | None) -> None:
        if not candidate or not candidate.get("candidate") or self.pc is None:
            return  # end of candidates: aiortc needs no marker
        if self.pc.remoteDescription is None:
            return  # belongs to an offer this side ignored
        try:
            parsed = candidate_from_sdp(str(candidate["candidate"]).removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            await self.pc.addIceCandidate(parsed)
        except (AssertionError, ValueError, IndexError, KeyError):
            # aiortc's candidate parser asserts on malformed input: a peer's mistake.
            self._log.info("candidate_ignored")

    async def _make_offer(self) -> None:
        assert self.pc is not None
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_local_description()

    async def _send_local_description(self) -> None:
        assert self.pc is not None
        assert self.pc.localDescription is not None
        local = self.pc.localDescription
        await self._send({"description": {"type": local.type, "sdp": local.sdp}})

    async def _fresh_pc(self, kinds: frozenset[str] | None = None) -> None:
        old = self.pc
        pc = RTCPeerConnection(rtc_configuration(self.ice_servers, self.relay_only))
        self.pc = pc
        self.generation += 1
        if old is not None:
            # Closed in the background: closing waits for transports that may be dead.
            self._closing.spawn(old.close())

        @pc.on("connectionstatechange")
        def _state_changed() -> None:
            if pc is self.pc and self._on_state is not None:
                self._on_state(pc.connectionState)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if pc is self.pc and self._on_track is not None:
                self._on_track(track)

        for track in self._tracks():
            if kinds is None or track.kind in kinds:
                pc.addTrack(track)


def media_kinds(sdp: str) -> frozenset[str]:
    """The media kinds ("audio", "video") that an SDP has sections for."""
    return frozenset(
        line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")
    )
