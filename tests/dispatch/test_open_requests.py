"""A counsellor may have only a few requests open at once, so one desk cannot fill the
queue ahead of every other organisation."""

from __future__ import annotations

import asyncio

import pytest


class TestOpenRequestCap:
    async def test_the_third_open_request_is_409_until_one_ends(self, desk):
        """Two open requests are fine; the third is 409 too_many_open_requests naming the
        limit; after a cancel there is room again."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"], status="away")
        first = await desk.ask(counsellor, "uk")
        await desk.ask(counsellor, "uk")
        status, body = await counsellor.post("/api/requests", {"language": "uk"})
        assert status == 409
        assert body["error"]["code"] == "too_many_open_requests"
        assert body["error"]["limit"] == 2
        assert (await counsellor.delete(f"/api/requests/{first['id']}"))[0] == 200
        await desk.ask(counsellor, "uk")

    async def test_another_counsellor_is_not_held_back(self, desk):
        """The limit is per counsellor: a colleague still asks."""
        busy, other = await desk.counsellor(), await desk.counsellor()
        await desk.interpreter(["uk"], status="away")
        for _ in range(2):
            await desk.ask(busy, "uk")
        assert (await busy.post("/api/requests", {"language": "uk"}))[0] == 409
        await desk.ask(other, "uk")

    async def test_many_requests_at_the_same_moment_still_open_two(self, desk):
        """Six requests sent at once by one counsellor: two 201, four 409."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"], status="away")
        results = await asyncio.gather(
            *(counsellor.post("/api/requests", {"language": "uk"}) for _ in range(6))
        )
        assert sorted(status for status, _ in results) == [201, 201, 409, 409, 409, 409]

    @pytest.mark.dispatch_settings(open_requests_per_counsellor=1)
    async def test_the_limit_is_a_setting(self, desk):
        """TOLK_OPEN_REQUESTS_PER_COUNSELLOR=1: the second request waits for the first."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"], status="away")
        await desk.ask(counsellor, "uk")
        status, body = await counsellor.post("/api/requests", {"language": "uk"})
        assert (status, body["error"]["limit"]) == (409, 1)
