"""The pool tiers a wave is planned with, kept for a few seconds (dispatch/tiers_fast.py),
are the tiers the plain path reads at every wave: a change to the pools made here is seen
at the next wave, one made elsewhere once the kept tiers run out."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import Connection, update
from sqlmodel import col

from dispatch import candidates, tiers_fast
from dispatch.policy import Tier
from infra.db import Database
from interpreters import pools
from interpreters.models import IN_HOUSE_POOL, Interpreter, PoolTier
from interpreters.service import set_active
from tests.factories import Factory, make_interpreter


async def _both(db: Database) -> tuple[Sequence[Tier], Sequence[Tier]]:
    def read(conn: Connection) -> tuple[Sequence[Tier], Sequence[Tier]]:
        return tiers_fast.pool_tiers(conn), candidates.pool_tiers(conn)

    return await db.write_sync(read)


async def test_changes_made_here_are_seen_at_the_next_wave(factory: Factory, db: Database) -> None:
    """A staff member joining, a pool's escalation time changed, the last staff member
    deactivated: after each, the kept tiers are the ones the database holds."""
    await make_interpreter(factory, ["uk"])
    kept, read = await _both(db)
    assert [t.name for t in kept] == [t.name for t in read] == ["external"]

    staff = await make_interpreter(factory, ["uk"], pool_id=IN_HOUSE_POOL)
    kept, read = await _both(db)
    assert [t.name for t in kept] == [t.name for t in read] == ["in_house", "external"]

    async with db.write() as session:
        await pools.update_pool(session, IN_HOUSE_POOL, {"escalation_s": 7})
    kept, read = await _both(db)
    assert list(kept) == list(read)
    assert kept[0] == Tier("in_house", 7.0)

    async with db.write() as session:
        await set_active(session, staff.id, False, factory.clock.now())
    kept, read = await _both(db)
    assert [t.name for t in kept] == [t.name for t in read] == ["external"]


async def test_a_change_made_elsewhere_is_seen_once_the_kept_tiers_run_out(
    factory: Factory, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance's change (a statement no flush of this process saw) reaches the
    waves here after `KEEP_S`, not before."""
    await make_interpreter(factory, ["uk"])
    staff = await make_interpreter(factory, ["uk"], pool_id=IN_HOUSE_POOL, status="away")
    now = [1000.0]
    monkeypatch.setattr("dispatch.tiers_fast.monotonic", lambda: now[0])
    kept, _ = await _both(db)
    assert [t.name for t in kept] == ["in_house", "external"]
    async with db.write() as session:
        await session.exec(
            update(Interpreter).where(col(Interpreter.user_id) == staff.id).values(active=False)
        )
    now[0] += tiers_fast.KEEP_S - 0.5
    kept, read = await _both(db)
    assert ([t.name for t in kept], [t.name for t in read]) == (
        ["in_house", "external"],
        ["external"],
    )
    now[0] += 1
    kept, _ = await _both(db)
    assert [t.name for t in kept] == ["external"]


async def test_a_new_pool_is_seen_at_once(factory: Factory, db: Database) -> None:
    """A pool added and given a member here is a tier at the next wave."""
    await make_interpreter(factory, ["uk"])
    await _both(db)
    async with db.write() as session:
        pool_id = await pools.create_pool(session, "Sozialamt", PoolTier.IN_HOUSE, 30)
    await make_interpreter(factory, ["uk"], pool_id=pool_id)
    kept, read = await _both(db)
    assert list(kept) == list(read)
    assert [t.name for t in kept] == ["in_house", "external"]
