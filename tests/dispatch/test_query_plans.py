"""The candidate search, on the hot path of every request, is planned once, finds out
whether an interpreter has a pending offer through the partial index of pending offers,
not by reading every offer the interpreter was ever made, and walks the available
interpreters in idle order, stopping at the first few, not reading and sorting them all."""

from __future__ import annotations

import sqlite3

from sqlalchemy import Connection, update
from sqlalchemy.engine import Dialect

from dispatch.candidates import _candidate_query
from infra.db import Database, run_on
from interpreters.models import Interpreter, Presence
from tests.factories import Factory, make_interpreter

QUERY = _candidate_query(False, False, "fresh", False, False, True)
PARAMS = {"requested": "ar", "limit": 3, "asker": "nobody"}


def _positional(dialect: Dialect) -> tuple[str, tuple[object, ...]]:
    compiled = QUERY.compile(dialect=dialect)
    values = compiled.construct_params(PARAMS)
    return str(compiled), tuple(values[name] for name in compiled.positiontup or ())


def _sqlite_preparations(db: Database) -> int:
    """How often SQLite compiles the query when it runs a second time on one connection."""
    sql, values = _positional(db.engine.dialect)
    driver = sqlite3.connect(str(db.engine.url.database))
    compiled = 0

    def authorizer(*_args: object) -> int:
        # SQLite asks the authorizer while it compiles a statement, never while it runs one.
        nonlocal compiled
        compiled += 1
        return sqlite3.SQLITE_OK

    try:
        # (Setting an authorizer makes every statement compile again: set it first.)
        driver.set_authorizer(authorizer)
        driver.execute(sql, values).fetchall()
        compiled = 0
        driver.execute(sql, values).fetchall()
    finally:
        driver.close()
    return compiled


def _postgres_plan(conn: Connection, mode: str = "force_generic_plan") -> str:
    """The plan of a prepared statement: by default the one it settles on after its first
    runs (values unknown); `force_custom_plan`, the one of its first runs."""
    sql, values = _positional(conn.dialect)
    conn.exec_driver_sql(f"PREPARE candidates AS {sql}")
    conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
    # Tables this small would be read whole whatever the indexes.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    arguments = ", ".join(
        str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"
        for value in values
    )
    rows = conn.exec_driver_sql(f"EXPLAIN EXECUTE candidates({arguments})")
    plan = "\n".join(str(row[0]) for row in rows)
    conn.exec_driver_sql("DEALLOCATE candidates")
    return plan


async def test_the_candidate_search_uses_the_index_of_pending_offers(db: Database) -> None:
    if db.dialect == "sqlite":
        # A bound value that decides whether a partial index applies makes SQLite compile
        # the statement again at every run.
        assert _sqlite_preparations(db) == 0
        return
    async with db.write() as session:
        plan = await run_on(session, _postgres_plan)
    assert "uq_offer_pending_interpreter" in plan, plan


def _sqlite_plan(conn: Connection) -> str:
    sql, values = _positional(conn.dialect)
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values)
    return "\n".join(str(row[-1]) for row in rows)


async def test_the_candidate_search_walks_the_free_in_idle_order_on_stale_statistics(
    factory: Factory, db: Database
) -> None:
    """Statistics taken while everyone was offline (last night) still lead the morning's
    first requests along the index in idle order."""
    for _ in range(40):
        await make_interpreter(factory, ["ar"], status="offline")
    async with db.write() as session:
        await run_on(session, lambda conn: conn.exec_driver_sql("ANALYZE"))
    async with db.write() as session:
        await session.exec(update(Interpreter).values(status=Presence.AVAILABLE.value))
        plan = await run_on(
            session,
            _sqlite_plan
            if db.dialect == "sqlite"
            else lambda conn: _postgres_plan(conn, "force_custom_plan"),
        )
    assert "ix_interpreter_status_idle" in plan, plan
    assert "Sort" not in plan, plan
    assert "ORDER BY" not in plan, plan
