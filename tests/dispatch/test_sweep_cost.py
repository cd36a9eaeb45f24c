"""What a sweep costs the database: every instance sweeps every second, busy or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from dispatch.announce import PUBLISHER
from dispatch.sweeper import sweep
from infra.appkeys import SETTINGS
from infra.db import Database, make_engine
from tests.conftest import Stack
from tests.dispatch.conftest import Desk
from tests.factories import make_interpreter


@pytest.fixture
async def own_db(stack: Stack, db: Database) -> AsyncIterator[tuple[Database, list[bool]]]:
    """A Database of its own on the test's database, counting the transactions it begins
    (the app's own sweeps run on the app's engine meanwhile)."""
    engine = make_engine(stack.database_url, search_path=stack.search_path)
    begun: list[bool] = []

    def on_begin(conn: Any) -> None:
        begun.append(True)

    event.listen(engine.sync_engine, "begin", on_begin)
    own = Database(engine)
    try:
        yield own, begun
    finally:
        await own.close()


async def test_an_idle_sweep_is_one_read(desk: Desk, own_db: tuple[Database, list[bool]]):
    """With nothing due, a sweep looks for every kind of deadline in one transaction."""
    app = desk.factory.client.app
    db, begun = own_db
    await make_interpreter(desk.factory, ["fa"], status="offline")
    counsellor = await desk.counsellor()
    await desk.ask(counsellor, "fa")  # queued, far from any deadline
    assert await sweep(db, app[PUBLISHER], app[SETTINGS], desk.factory.clock.now()) == 0
    assert len(begun) == 1


async def test_a_sweep_with_work_reads_once_then_writes_per_row(
    desk: Desk, own_db: tuple[Database, list[bool]]
):
    """A due request is found by the one read and handled in its own write."""
    app = desk.factory.client.app
    db, begun = own_db
    await make_interpreter(desk.factory, ["fa"], status="offline")
    counsellor = await desk.counsellor()
    req = await desk.ask(counsellor, "fa")
    later = desk.factory.clock.advance(app[SETTINGS].request_max_wait_s + 1)
    assert await sweep(db, app[PUBLISHER], app[SETTINGS], later) == 1
    assert len(begun) == 2
    status, body = await counsellor.get(f"/api/requests/{req['id']}")
    assert status == 200
    assert body["request"]["state"] == "expired"
