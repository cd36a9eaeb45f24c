"""Races: many interpreters and requests at the same moment, on real concurrent connections.

Each HTTP call runs in its own server handler with its own pooled database connection, so
on PostgreSQL these are truly concurrent transactions; on SQLite they serialise.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from calls.models import Call, CallState
from dispatch.models import InterpretationRequest
from interpreters.models import Interpreter, Presence


class TestRaces:
    @pytest.mark.dispatch_settings(matching_policy="ring_all")
    async def test_twenty_accepts_of_one_request_make_exactly_one_call(self, desk, db):
        """20 interpreters accept the same request at once: one call, 19 get 409."""
        counsellor = await desk.counsellor()
        people = [await desk.interpreter(["ar"]) for _ in range(20)]
        await desk.ask(counsellor, "ar")
        offers = [(await p.next_event("offer"))["offer"] for p in people]
        results = await asyncio.gather(
            *(p.post(f"/api/offers/{o['id']}/accept") for p, o in zip(people, offers, strict=True))
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [409] * 19
        assert {b["error"]["code"] for s, b in results if s == 409} == {"offer_taken"}
        async with db.read() as session:
            calls = (await session.exec(select(func.count()).select_from(Call))).one()
            busy = (
                await session.exec(
                    select(func.count())
                    .select_from(Interpreter)
                    .where(col(Interpreter.status) == Presence.BUSY.value)
                )
            ).one()
        assert (calls, busy) == (1, 1)

    async def test_fifty_requests_for_ten_interpreters_never_double_book(self, desk, db):
        """50 requests race for 10 interpreters: nobody is in two calls; each request is
        accepted or queued."""
        people = [await desk.interpreter(["uk"]) for _ in range(10)]
        counsellors = [await desk.counsellor() for _ in range(50)]
        asked = await asyncio.gather(
            *(c.post("/api/requests", {"language": "uk"}) for c in counsellors)
        )
        assert all(status == 201 for status, _ in asked)

        async def take_a_call(person) -> int:
            """Accept offers as they come until one of them turns into a call."""
            tries = 0
            while True:
                try:
                    offer = (await person.next_event("offer", within=5))["offer"]
                except TimeoutError:
                    return tries
                tries += 1
                status, _ = await person.post(f"/api/offers/{offer['id']}/accept")
                if status == 200:
                    return tries

        await asyncio.gather(*(take_a_call(p) for p in people))
        async with db.read() as session:
            calls = list(await session.exec(select(Call)))
            states = list(await session.exec(select(InterpretationRequest.state)))
        live = [c.interpreter_id for c in calls if c.state != CallState.ENDED]
        assert len(live) == len(set(live)) == 10
        assert sorted(set(states)) == ["accepted", "queued"]
        assert states.count("accepted") == 10
