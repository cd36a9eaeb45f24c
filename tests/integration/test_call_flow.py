"""A whole interpreted call through a running `tolk serve`: request, offer, accept, two
aiortc peers negotiating through the call room, video both ways, hangup, the bill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.parties import hang_up, online, request_and_accept, usage_of
from tests.integration.server import TolkServer, serving

pytestmark = [pytest.mark.media, pytest.mark.usefixtures("loopback_only")]

COUNSELLOR = "berater.jobcenter"
INTERPRETER = "olena"
FINANCE = "finanzen"


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TolkServer]:
    """`tolk serve` on a fresh database with the demo roster."""
    async with serving(request.param, tmp_path, TOLK_WRAP_UP_S="0") as server:
        yield server


class TestCallFlow:
    @pytest.mark.timeout(90)
    async def test_request_to_video_both_ways_to_hangup_and_usage(self, server):
        """Request Ukrainian, accept, both decode the other's video, hang up: billed right."""
        async with (
            online(server.url, INTERPRETER) as interpreter,
            online(server.url, COUNSELLOR) as counsellor,
            online(server.url, FINANCE, socket=False) as finance,
        ):
            await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
            connected_news = asyncio.ensure_future(
                counsellor.client.wait_for(
                    lambda m: (
                        m.get("type") == "call.updated"
                        and (m.get("call") or {}).get("state") == "connected"
                    ),
                    timeout_s=30,
                )
            )
            call_id, mine, theirs = await request_and_accept(counsellor, interpreter, "uk")
            connected = (await connected_news)["call"]
            started = time.monotonic()
            assert connected["id"] == call_id
            assert connected["connected_at"]
            for peer in (mine, theirs):
                assert peer.negotiator is not None
                assert peer.negotiator.state == "connected"
                # Each side decodes a stream of the other's video, not just one frame.
                await peer.sink.wait_for_frames("video", 20, timeout_s=15)
                await peer.sink.wait_for_frames("audio", 10, timeout_s=15)
            assert mine.sink.last_video is not None
            assert mine.sink.last_video.width == 320

            await asyncio.sleep(1.5)  # the call goes on a while (not a synchronisation)
            ended, hung_up = await hang_up(mine, interpreter, call_id)
            measured = hung_up - started
            assert ended["end_reason"] == "hangup"
            assert abs(ended["duration_s"] - measured) <= 1.0, (ended, measured)
            await asyncio.wait_for(theirs.ended.wait(), 10)

            records = await usage_of(finance, call_id)
            assert len(records) == 1
            assert records[0]["duration_s"] == ended["duration_s"]
            assert records[0]["language"] == "uk"
            assert records[0]["end_reason"] == "hangup"
