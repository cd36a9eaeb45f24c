"""The open-request cap counts the same on PostgreSQL's one-trip path
(dispatch/caps_fast.py) as on the plain path beside it, and holds for requests opened by
one counsellor at the same moment: the second count waits for the first to commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Connection, text

from accounts.views import OrganizationView
from dispatch.caps import TooManyOpenRequests, check_open_requests, open_within_cap
from dispatch.service import Ask, Wishes
from infra.config import Settings
from infra.db import Database
from tests.factories import Factory, _request_row, make_interpreter
from tests.waiting import eventually

PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])


@PATHS
async def test_only_queued_and_offered_requests_of_the_counsellor_count(
    factory: Factory, db: Database, fast: bool
) -> None:
    """Two open: a limit of three leaves room, a limit of two does not; an ended request
    and a colleague's open ones do not count."""
    counsellor, colleague = await factory.user(), await factory.user()
    now = factory.clock.now()
    later = now + timedelta(days=1)
    async with db.write() as session:
        for who, state in [
            (counsellor, "queued"),
            (counsellor, "offering"),
            (counsellor, "expired"),
            (colleague, "queued"),
            (colleague, "queued"),
        ]:
            await _request_row(session, who, who.organization_id, "uk", state, now, later)

    def check(conn: Connection, limit: int) -> None:
        check_open_requests(conn, counsellor.id, limit, fast=fast)

    await db.write_sync(check, 3)
    with pytest.raises(TooManyOpenRequests):
        await db.write_sync(check, 2)


@PATHS
async def test_a_count_waits_for_a_request_being_opened_meanwhile(
    factory: Factory, db: Database, settings: Settings, fast: bool
) -> None:
    """While one transaction opens the counsellor's only allowed request, a second asks:
    it waits, then finds the first request and is refused."""
    counsellor = await factory.user()
    await make_interpreter(factory, ["uk"], status="away")
    chosen = settings.model_copy(update={"fast_paths": fast})
    org = OrganizationView(id=counsellor.organization_id, name="Org")
    ask = Ask(counsellor.id, org, "uk", Wishes())
    now = factory.clock.now()

    def open_one(conn: Connection) -> None:
        open_within_cap(conn, ask, limit=1, now=now, settings=chosen)

    async with db.write() as first:
        conn = await first.connection()
        await conn.run_sync(open_one)
        second = asyncio.ensure_future(db.write_sync(open_one))
        if db.dialect == "postgresql":
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()

            async def waiting() -> bool:
                async with db.engine.connect() as look:
                    found = await look.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE :pid = ANY(pg_blocking_pids(pid))"
                        ),
                        {"pid": pid},
                    )
                    return bool(found.scalar_one())

            await eventually(waiting)
        # (SQLite: the second cannot begin while the first holds the write lock.)
        assert not second.done()
    with pytest.raises(TooManyOpenRequests):
        await second
