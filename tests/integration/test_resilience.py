"""A running call with aiortc media while the server is killed with SIGKILL and started
again: media keeps flowing peer to peer, the peers rejoin, the bill is right.

The other half of the issue's resilience test (both peers vanish, the call ends `lost` at
the last seen time) needs no media: tests/calls/test_resilience.py covers it with sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.parties import hang_up, online, request_and_accept
from tests.integration.server import TolkServer, serving

pytestmark = [pytest.mark.media, pytest.mark.usefixtures("loopback_only")]

HEARTBEAT_S = 1.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TolkServer]:
    """`tolk serve` on SQLite with a short heartbeat and sweep, and a grace long enough to
    restart in."""
    async with serving(
        "sqlite",
        tmp_path,
        TOLK_WRAP_UP_S="0",
        TOLK_WS_HEARTBEAT_S=str(HEARTBEAT_S),
        TOLK_SWEEP_INTERVAL_S="0.5",
        TOLK_CALL_REJOIN_GRACE_S="15",
    ) as server:
        yield server


def joined(call_id: str) -> Any:
    def match(message: dict[str, Any]) -> bool:
        return message.get("type") == "call.joined" and message.get("call_id") == call_id

    return match


class TestServerKilledDuringACall:
    @pytest.mark.timeout(120)
    async def test_media_flows_while_the_server_is_down_and_the_call_is_billed_once(self, server):
        """SIGKILL mid-call: video keeps arriving, both rejoin the same call after the
        restart, and the billed duration is the real one within a heartbeat."""
        async with (
            online(server.url, "olena") as interpreter,
            online(server.url, "berater.jobcenter") as counsellor,
        ):
            await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
            connected_news = asyncio.ensure_future(
                counsellor.client.wait_for(
                    lambda m: (m.get("call") or {}).get("state") == "connected", timeout_s=30
                )
            )
            call_id, mine, theirs = await request_and_accept(counsellor, interpreter, "uk")
            assert (await connected_news)["call"]["id"] == call_id
            started = time.monotonic()
            peers = (mine, theirs)
            for peer in peers:
                await peer.sink.wait_for_frames("video", 10, timeout_s=15)
            await asyncio.sleep(2 * HEARTBEAT_S)  # seen-times get written (not a sync)

            server.kill()
            before = [peer.sink.frames["video"] for peer in peers]
            # Peer to peer: the frames keep coming with no server at all (~30 fps).
            for peer, count in zip(peers, before, strict=True):
                await peer.sink.wait_for_frames("video", count + 30, timeout_s=10)
            assert server.proc is not None
            assert server.proc.poll() is not None
            for party in (counsellor, interpreter):
                assert not party.client.connected

            rejoined = [
                asyncio.ensure_future(party.client.wait_for(joined(call_id), timeout_s=30))
                for party in (counsellor, interpreter)
            ]
            await server.start()
            for answer in rejoined:
                assert (await answer)["call_id"] == call_id
            # The rooms hear both sides report media `connected` again; the call is live.
            call = (await counsellor.request("GET", f"/api/calls/{call_id}"))["call"]
            assert call["state"] == "connected"
            for peer in peers:
                assert peer.negotiator is not None
                # Media never stopped: nobody had to start over with a new connection.
                assert peer.negotiator.generation == 1
                assert peer.negotiator.state == "connected"

            await asyncio.sleep(1.0)  # the call goes on after the restart (not a sync)
            ended, hung_up = await hang_up(mine, interpreter, call_id)
            real_s = hung_up - started
            assert ended["id"] == call_id
            assert ended["end_reason"] == "hangup"
            assert abs(ended["duration_s"] - real_s) <= HEARTBEAT_S, (ended, real_s)

        async with online(server.url, "finanzen", socket=False) as finance:
            records = await finance.request("GET", "/api/usage")
        assert [r["call_id"] for r in records] == [call_id]
        assert records[0]["duration_s"] == ended["duration_s"]
