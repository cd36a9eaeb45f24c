"""The people of an integration test: headless aiortc participants driven through the real
HTTP API and socket of a running Tolk (the same client the simulated interpreter uses)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack

from signaling.peers.call import CallPeer
from signaling.peers.client import TolkClient
from signaling.peers.media import PatternVideoTrack, TestPattern, ToneAudioTrack
from tolk.demo import DEMO_PASSWORD

PATTERNS = {name: TestPattern(name, 320, 240) for name in ("counsellor", "interpreter")}


def tracks_of(name: str) -> Any:
    """Fresh tracks on a pattern drawn once (drawing costs ~100 ms)."""

    def tracks() -> list[MediaStreamTrack]:
        return [PatternVideoTrack(PATTERNS[name]), ToneAudioTrack()]

    return tracks


@dataclass
class Party:
    """A signed-in user whose socket stays open (reconnecting) while the test runs."""

    client: TolkClient
    runner: asyncio.Task[None] | None = None
    peers: list[CallPeer] = field(default_factory=list)

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        return await self.client.request(method, path, json)

    def peer(self, call_id: str, name: str) -> CallPeer:
        """A CallPeer for this call (not joined yet)."""
        peer = CallPeer(self.client, call_id, tracks_of(name))
        self.peers.append(peer)
        return peer


@contextlib.asynccontextmanager
async def online(url: str, username: str, socket: bool = True) -> AsyncIterator[Party]:
    """Log in as a demo user and keep the socket open; close everything afterwards."""
    party = Party(
        TolkClient(url, username, DEMO_PASSWORD, backoff_initial_s=0.05, backoff_max_s=0.5)
    )
    try:
        await party.client.login()
        if socket:
            await party.client.connect()
            party.runner = asyncio.get_running_loop().create_task(party.client.run_socket())
        yield party
    finally:
        for peer in party.peers:
            await peer.close()
        if party.runner is not None:
            party.runner.cancel()
            await asyncio.gather(party.runner, return_exceptions=True)
        await party.client.close()


def names_a_call(message: dict[str, Any]) -> bool:
    """call.updated, or request.updated that carries the call's id."""
    if message.get("type") == "call.updated":
        return True
    request = message.get("request") or {}
    return message.get("type") == "request.updated" and bool(request.get("call_id"))


def call_state(call_id: str, state: str) -> Any:
    """A predicate: call.updated of this call in this state."""

    def match(message: dict[str, Any]) -> bool:
        call = message.get("call") or {}
        return (
            message.get("type") == "call.updated"
            and call.get("id") == call_id
            and call.get("state") == state
        )

    return match


async def request_and_accept(
    counsellor: Party, interpreter: Party, language: str
) -> tuple[str, CallPeer, CallPeer]:
    """The counsellor asks for `language`, the interpreter accepts the offer; both join the
    call with an aiortc peer. Returns the call id and the (counsellor, interpreter) peers."""
    offer_seen = asyncio.ensure_future(interpreter.client.wait_for("offer", timeout_s=15))
    await counsellor.request("POST", "/api/requests", {"language": language})
    offer = (await offer_seen)["offer"]
    assert offer["language"] == language
    call_news = asyncio.ensure_future(counsellor.client.wait_for(names_a_call, timeout_s=15))
    call = (await interpreter.request("POST", f"/api/offers/{offer['id']}/accept"))["call"]
    news = await call_news
    call_id = (news.get("call") or {}).get("id") or news["request"]["call_id"]
    assert call_id == call["id"]
    mine = counsellor.peer(call_id, "counsellor")
    theirs = interpreter.peer(call_id, "interpreter")
    await asyncio.gather(mine.join(), theirs.join())
    return call_id, mine, theirs


async def hang_up(peer: CallPeer, listener: Party, call_id: str) -> tuple[dict[str, Any], float]:
    """`peer` hangs up; returns the ended call as `listener` is told it, and the monotonic
    moment the hang-up was sent."""
    ended_news = asyncio.ensure_future(
        listener.client.wait_for(call_state(call_id, "ended"), timeout_s=10)
    )
    hung_up = time.monotonic()
    await peer.hangup()
    return (await ended_news)["call"], hung_up


async def usage_of(finance: Party, call_id: str) -> list[dict[str, Any]]:
    """The usage records of one call, as finance exports them."""
    records = await finance.request("GET", "/api/usage")
    return [r for r in records if r["call_id"] == call_id]
