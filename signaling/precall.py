"""The pre-call check: the server is an aiortc peer that sends a browser's own camera and
microphone back to it and measures the path (round-trip time, loss, relay or not), so a
counsellor can test camera, microphone and network before a call.

Each echo peer costs about a quarter of a core, so an instance runs at most
`precall_max_peers` at once and closes each after `precall_max_s`; one user has at most
one (a new check replaces the old); `precall_counsellor_slots` of them are for counsellors
only.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from infra.errors import InvalidInput, NotFound, TooManyRequests
from infra.ids import new_id

if TYPE_CHECKING:
    from signaling.echo import EchoPeer

log = structlog.get_logger(__name__)


class EchoBusy(TooManyRequests):
    code = "precall_busy"
    default_message = "The connection test is busy; try again shortly."


class EchoNotFound(NotFound):
    code = "precall_not_found"
    default_message = "No such connection test (it may have ended)."


class EchoPeers:
    """The echo peers of this instance."""

    def __init__(self, limit: int, max_s: float, counsellor_slots: int = 0) -> None:
        self.limit = limit
        self.max_s = max_s
        # Interpreters and admins share what counsellors do not have to themselves: a
        # counsellor about to take a call is never kept out by others' checks.
        self.others_limit = max(0, limit - counsellor_slots)
        self._peers: dict[str, EchoPeer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    async def open(
        self,
        user_id: str,
        offer_sdp: str,
        ice_servers: list[dict[str, Any]],
        *,
        counsellor: bool,
    ) -> tuple[EchoPeer, str]:
        """Answer a browser's offer with an echo of its own tracks; returns the answer SDP."""
        # Closing awaits, so a check of the same user may have started meanwhile: repeat
        # until none is left. From there to the insertion nothing awaits, so concurrent
        # checks count each other.
        while mine := [p for p in self._peers.values() if p.user_id == user_id]:
            for peer in mine:
                await self.close(peer.id)
        others = sum(1 for p in self._peers.values() if not p.counsellor)
        if len(self._peers) >= self.limit or (not counsellor and others >= self.others_limit):
            raise EchoBusy(retry_after_s=int(self.max_s))
        # Loaded on the first check only (see signaling.echo).
        from signaling import echo

        peer = echo.start_echo(
            new_id(), user_id, counsellor, ice_servers, self.max_s, on_end=self.close
        )
        # Counted from here: the answer below may wait for ICE gathering.
        self._peers[peer.id] = peer
        try:
            sdp = await echo.answer(peer, offer_sdp)
        except Exception as exc:
            await self.close(peer.id)
            if isinstance(exc, (ValueError, IndexError, KeyError)):
                # aiortc's SDP parser raises these for text that is not a usable offer.
                raise InvalidInput(
                    "sdp: not a usable WebRTC offer",
                    fields=[{"field": "sdp", "problem": str(exc)[:200]}],
                ) from None
            raise
        peer.timer = asyncio.get_running_loop().create_task(self._expire(peer))
        log.info("precall_opened", precall_id=peer.id, open=len(self._peers))
        return peer, sdp

    def get(self, peer_id: str, user_id: str) -> EchoPeer:
        """A running echo of this user (404 for anyone else's: ids do not leak)."""
        peer = self._peers.get(peer_id)
        if peer is None or peer.user_id != user_id:
            raise EchoNotFound()
        return peer

    async def _expire(self, peer: EchoPeer) -> None:
        await asyncio.sleep(peer.max_s)
        await self.close(peer.id)

    async def close(self, peer_id: str) -> None:
        """Stop one echo."""
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        if peer.timer is not None and peer.timer is not asyncio.current_task():
            peer.timer.cancel()
        with contextlib.suppress(Exception):
            await peer.pc.close()
        log.info("precall_closed", precall_id=peer.id, open=len(self._peers))

    async def close_all(self) -> None:
        """Stop every echo (on shutdown)."""
        for peer_id in list(self._peers):
            await self.close(peer_id)


ECHO_PEERS = web.AppKey("echo_peers", EchoPeers)
