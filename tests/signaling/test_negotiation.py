"""Perfect negotiation between two aiortc peers: roles, glare, restarts, stale answers."""

from __future__ import annotations

import pytest

from tests.signaling.loopback import loopback_only
from tests.signaling.wire import pair

pytestmark = pytest.mark.usefixtures("loopback_only")
__all__ = ["loopback_only"]


async def both_connected_with_video(a, b, frames: int = 3) -> None:
    await a.wait_state("connected")
    await b.wait_state("connected")
    await a.sink.wait_for_frames("video", count=frames)
    await b.sink.wait_for_frames("video", count=frames)


class TestNegotiation:
    async def test_impolite_offer_polite_answer(self):
        """The counsellor offers, the interpreter answers: both decode the other's video."""
        counsellor, interpreter = pair([], [])
        try:
            await counsellor.negotiator.offer()
            await both_connected_with_video(counsellor, interpreter)
            assert [d["description"]["type"] for d in counsellor.sent] == ["offer"]
            assert [d["description"]["type"] for d in interpreter.sent] == ["answer"]
        finally:
            await counsellor.close()
            await interpreter.close()

    async def test_audio_only_offer_is_answered_with_audio_only(self):
        """A counsellor offers audio only; the interpreter, who has a camera too, answers
        with audio alone, and each side hears the other."""
        counsellor, interpreter = pair([], [], audio_only_counsellor=True)
        try:
            await counsellor.negotiator.offer()
            await counsellor.wait_state("connected")
            await interpreter.wait_state("connected")
            await counsellor.sink.wait_for_frames("audio", count=5)
            await interpreter.sink.wait_for_frames("audio", count=5)
            answer = interpreter.sent[0]["description"]
            assert answer["type"] == "answer"
            assert "m=video" not in answer["sdp"]
        finally:
            await counsellor.close()
            await interpreter.close()

    async def test_glare_is_resolved_by_the_roles(self):
        """Both offer at once: the impolite side ignores the other offer, the polite side
        gives up its own and answers from a fresh connection; the call connects."""
        counsellor, interpreter = pair([], [], start=False)
        try:
            await counsellor.negotiator.offer()
            await interpreter.negotiator.offer()
            counsellor.start()
            interpreter.start()
            await both_connected_with_video(counsellor, interpreter)
            assert counsellor.negotiator.ignored_offers == 1
            assert counsellor.negotiator.generation == 1
            assert interpreter.negotiator.collisions == 1
            assert interpreter.negotiator.generation == 2
            assert [d["description"]["type"] for d in interpreter.sent] == ["offer", "answer"]
        finally:
            await counsellor.close()
            await interpreter.close()

    async def test_restart_after_path_loss_makes_a_fresh_connection_on_both_sides(self):
        """A side that lost its path offers a fresh connection; the other answers from a
        fresh one too (aiortc has no ICE restart), and video flows again."""
        counsellor, interpreter = pair([], [])
        try:
            await counsellor.negotiator.offer()
            await both_connected_with_video(counsellor, interpreter)
            first_pc = counsellor.negotiator.pc
            before = counsellor.sink.frames["video"]
            await interpreter.negotiator.offer()
            await both_connected_with_video(counsellor, interpreter, frames=before + 3)
            assert counsellor.negotiator.pc is not first_pc
            assert counsellor.negotiator.generation == 2
            assert interpreter.negotiator.generation == 2
        finally:
            await counsellor.close()
            await interpreter.close()

    async def test_stale_answer_is_ignored(self):
        """An answer to an offer this side no longer has changes nothing."""
        counsellor, interpreter = pair([], [])
        try:
            await counsellor.negotiator.offer()
            await both_connected_with_video(counsellor, interpreter)
            stale = interpreter.sent[-1]
            await counsellor.negotiator.handle(stale)
            assert counsellor.negotiator.state == "connected"
            assert counsellor.negotiator.generation == 1
        finally:
            await counsellor.close()
            await interpreter.close()

    async def test_trickled_candidates_and_end_of_candidates_are_accepted(self):
        """Candidates a browser trickles are added; malformed ones and the end marker are
        ignored without breaking the call."""
        counsellor, interpreter = pair([], [])
        try:
            await counsellor.negotiator.offer()
            await both_connected_with_video(counsellor, interpreter)
            for data in (
                {
                    "candidate": {
                        "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
                        "sdpMid": "0",
                        "sdpMLineIndex": 0,
                    }
                },
                {"candidate": {"candidate": "garbage", "sdpMid": "0"}},
                {"candidate": None},
                {"candidate": {"candidate": ""}},
            ):
                await interpreter.negotiator.handle(data)
            assert interpreter.negotiator.state == "connected"
        finally:
            await counsellor.close()
            await interpreter.close()
