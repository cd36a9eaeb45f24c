"""The aiortc half of the pre-call check: an echo peer that answers a browser's offer with
its own tracks and measures the path.

Imported by `signaling.precall` on the first check, not when an instance starts: aiortc
and PyAV are ~30 MB of an instance's memory that most instances never use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from signaling.peers.rtc import PathReport, path_report, rtc_configuration

log = structlog.get_logger(__name__)


@dataclass
class EchoPeer:
    """One running echo: its peer connection, owner and deadline."""

    id: str
    user_id: str
    counsellor: bool
    pc: RTCPeerConnection
    started: float
    max_s: float
    relay: MediaRelay = field(default_factory=MediaRelay)
    timer: asyncio.Task[None] | None = None

    @property
    def remaining_s(self) -> int:
        return max(0, int(self.started + self.max_s - time.monotonic()))

    async def report(self) -> PathReport:
        """The path as measured so far."""
        return await path_report(self.pc)


def start_echo(
    peer_id: str,
    user_id: str,
    counsellor: bool,
    ice_servers: list[dict[str, Any]],
    max_s: float,
    on_end: Callable[[str], Awaitable[None]],
) -> EchoPeer:
    """A peer that sends back whatever tracks arrive; `on_end` when its connection fails or
    the browser closes it."""
    pc = RTCPeerConnection(rtc_configuration(ice_servers))
    peer = EchoPeer(peer_id, user_id, counsellor, pc, time.monotonic(), max_s)

    @pc.on("track")
    def _echo(track: MediaStreamTrack) -> None:
        pc.addTrack(peer.relay.subscribe(track, buffered=False))

    @pc.on("connectionstatechange")
    async def _state() -> None:
        log.info("precall_state", precall_id=peer.id, state=pc.connectionState)
        # "closed": the browser ended the check (its DTLS close) before DELETE arrived.
        if pc.connectionState in ("failed", "closed"):
            await on_end(peer.id)

    return peer


async def answer(peer: EchoPeer, offer_sdp: str) -> str:
    """The answer SDP to the browser's offer; ValueError (and aiortc's parser's IndexError,
    KeyError) for an offer that is no usable one."""
    pc = peer.pc
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    if not pc.getTransceivers():
        raise ValueError("the offer has neither audio nor video")
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)
