"""`tolk demo` (what `make run` starts after `tolk seed-demo`): the service plus simulated
interpreters for uk, ar and fa-AF, so a counsellor's request connects with nobody else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.parties import call_state, names_a_call, online
from tests.integration.server import TolkServer, backend
from tolk.launcher import SIMULATED

pytestmark = [pytest.mark.media, pytest.mark.usefixtures("loopback_only")]

DEMO_LANGUAGES = ("uk", "ar", "fa-AF")


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[TolkServer]:
    """`tolk demo` on a fresh SQLite file seeded with `tolk seed-demo`."""
    async with backend("sqlite", tmp_path) as data:
        # The simulated interpreters are processes of their own: tell their aiortc to
        # offer loopback, as this process's peers do (see tests/signaling/loopback.py).
        server = TolkServer(tmp_path, data, "demo", TOLK_ICE_HOST_ADDRESSES='["127.0.0.1"]')
        try:
            await server.run("seed-demo")
            await server.start()
            yield server
        finally:
            server.stop()


async def available_languages(counsellor: Any) -> set[str]:
    body = await counsellor.request("GET", "/api/languages")
    rows = body["languages"] if isinstance(body, dict) else body
    return {row["tag"] for row in rows if row["available"] > 0}


class TestDemo:
    @pytest.mark.timeout(90)
    async def test_simulated_interpreters_answer_a_counsellor_with_video(self, demo):
        """Three simulated interpreters go available; a request for uk ends in a call whose
        test pattern the counsellor's aiortc peer decodes."""
        assert len(SIMULATED) == 3
        async with online(demo.url, "berater.sozialamt") as counsellor:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not set(DEMO_LANGUAGES) <= await available_languages(counsellor):
                assert loop.time() < deadline, await available_languages(counsellor)
                await asyncio.sleep(0.2)

            call_news = asyncio.ensure_future(counsellor.client.wait_for(names_a_call, 20))
            await counsellor.request("POST", "/api/requests", {"language": "uk"})
            news = await call_news
            call_id = (news.get("call") or {}).get("id") or news["request"]["call_id"]
            connected = asyncio.ensure_future(
                counsellor.client.wait_for(call_state(call_id, "connected"), 20)
            )
            peer = counsellor.peer(call_id, "counsellor")
            await peer.join()
            call = (await connected)["call"]
            assert call["interpreter"]["display_name"] == "Olena Kovalenko"
            await peer.sink.wait_for_frames("video", 10, timeout_s=15)
            await peer.sink.wait_for_frames("audio", 10, timeout_s=15)
            # TOLK_ICE_HOST_ADDRESSES reached the simulated interpreter: loopback only.
            assert peer.negotiator is not None
            assert peer.negotiator.pc is not None
            answer = peer.negotiator.pc.remoteDescription
            assert answer is not None
            hosts = {
                line.split()[4]
                for line in answer.sdp.splitlines()
                if line.startswith("a=candidate")
            }
            assert hosts == {"127.0.0.1"}
            frame = peer.sink.last_video
            assert frame is not None
            assert (frame.width, frame.height) == (640, 480)

            ended = asyncio.ensure_future(
                counsellor.client.wait_for(call_state(call_id, "ended"), 10)
            )
            await peer.hangup()
            assert (await ended)["call"]["end_reason"] == "hangup"
