"""A fresh database at the newest schema for each test that runs an app, without running
every migration for each test: the migrations run once per test run, and each test gets
what they made.

On SQLite each test gets a copy of the migrated file. On PostgreSQL the statements the
migrations sent are recorded once and sent again into a new schema (they name no schema:
the connection's search_path chooses it); after a test its schema is emptied of the test's
rows, given back the rows the migrations wrote, and kept for the next test of the run.
The migrations step by step, on both backends, are the subject of
tests/tolk/test_migrations.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import sqlite3
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests import backends
from tolk import schema

SQLITE_PREFIX = "sqlite+aiosqlite:///"
# What the migrations send that changes nothing: reading (Alembic's look at its version
# table, the dialect's questions about the server) and transaction control.
_READS = ("SELECT", "SHOW", "BEGIN", "COMMIT", "ROLLBACK")
# The shape of a schema: its tables' and indexes' columns, and its constraints.
_SHAPE = """
SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
    || ':' || a.attnotnull
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT k.conname || ':' || pg_get_constraintdef(k.oid) FROM pg_constraint k
  JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = $1
) AS shape(x)
"""

Statement = tuple[str, Any, bool]
"""A statement as the driver received it: its text, its parameters, and whether it ran once
per parameter set (executemany)."""


async def sqlite_at_head(url: str, folder: Path) -> None:
    """Give the new SQLite file at `url` the newest schema: a copy of a file in `folder` that
    the migrations made on first use. A file that is there already is left to the app's own
    upgrade."""
    template = folder / "at-head.db"
    if not _copied(template, url):
        making = folder / f"at-head-{secrets.token_hex(4)}.db"
        await schema.upgrade(SQLITE_PREFIX + str(making))
        _keep(making, template)
        _copied(template, url)


def _copied(template: Path, url: str) -> bool:
    """Copy `template` to the file of `url` unless that is there; False without a template."""
    if not template.exists():
        return False
    path = Path(url.removeprefix(SQLITE_PREFIX))
    if not path.exists():
        shutil.copyfile(template, path)
    return True


def _keep(making: Path, template: Path) -> None:
    """Make the migrated file the template, with a rollback journal, not WAL, so that the one
    file is the whole database."""
    with contextlib.closing(sqlite3.connect(making)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    making.replace(template)


@dataclass
class _Head:
    """What a schema at the newest revision holds before any test writes to it."""

    statements: list[Statement]
    shape: str
    deletes: str
    """One DELETE for each table but Alembic's."""
    rows: dict[str, list[tuple[Any, ...]]]
    columns: dict[str, list[str]]
    sequences: dict[str, tuple[int, bool]]


_head: _Head | None = None
_kept: list[str] = []
"""Schemas at head, emptied after their last test, for the next ones of this run."""


@contextlib.asynccontextmanager
async def postgres_at_head() -> AsyncIterator[str]:
    """A PostgreSQL schema at the newest revision with no rows but the migrations' own, for
    one test; emptied afterwards and kept for another (dropped if the test changed its
    shape)."""
    import asyncpg

    backends.need(backends.POSTGRES_URL, 5432, "PostgreSQL")
    name = _kept.pop() if _kept else await _new_schema()
    yield name
    conn = await asyncpg.connect(backends.POSTGRES_DSN, server_settings={"search_path": name})
    try:
        assert _head is not None
        if await conn.fetchval(_SHAPE, name) == _head.shape:
            await _empty(conn, name, _head)
            _kept.append(name)
            return
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await conn.close()


async def _new_schema() -> str:
    import asyncpg

    global _head
    if _head is None:
        statements = await _record_migrations()
    else:
        statements = _head.statements
    name = "t_" + secrets.token_hex(6)
    conn = await asyncpg.connect(backends.POSTGRES_DSN, server_settings={"search_path": name})
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        async with conn.transaction():
            for script, params, many in _batched(statements):
                if many:
                    await conn.executemany(script, params)
                elif params:
                    await conn.execute(script, *params)
                else:
                    await conn.execute(script)
        if _head is None:
            _head = await _look_at(conn, name, statements)
    finally:
        await conn.close()
    return name


async def _look_at(conn: Any, name: str, statements: list[Statement]) -> _Head:
    """What the migrations left in the schema `name`: its shape, rows and sequences."""
    tables = [
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", name)
        if r["tablename"] != "alembic_version"
    ]
    rows: dict[str, list[tuple[Any, ...]]] = {}
    columns: dict[str, list[str]] = {}
    for table in tables:
        found = await conn.fetch(f'SELECT * FROM "{table}"')  # noqa: S608 - the catalogue's
        if found:
            rows[table] = [tuple(r.values()) for r in found]
            columns[table] = list(found[0].keys())
    sequences = {
        r["sequencename"]: (r["last_value"], r["last_value"] is not None)
        for r in await conn.fetch(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = $1", name
        )
    }
    shape = await conn.fetchval(_SHAPE, name)
    deletes = ";\n".join(f'DELETE FROM "{t}"' for t in tables)  # noqa: S608 - as above
    return _Head(statements, shape, deletes, rows, columns, sequences)


async def _empty(conn: Any, name: str, head: _Head) -> None:
    """Delete every row a test wrote and put back what the migrations wrote, in one
    transaction. The replica role skips the foreign keys' triggers: every table is emptied,
    so no order of deletion is needed."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(head.deletes)
        for table, rows in head.rows.items():
            await conn.copy_records_to_table(
                table, records=rows, columns=head.columns[table], schema_name=name
            )
        for sequence, (value, called) in head.sequences.items():
            await conn.execute(
                "SELECT setval($1, $2, $3)", f"{name}.{sequence}", value or 1, called
            )


async def _record_migrations() -> list[Statement]:
    """Run the migrations into a scratch schema and keep what they wrote."""
    sent: list[Statement] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, many: bool
    ) -> None:
        sent.append((statement, params, many))

    async with backends.postgres_schema() as scratch:
        event.listen(Engine, "before_cursor_execute", record)
        try:
            await schema.upgrade(backends.POSTGRES_URL, scratch)
        finally:
            event.remove(Engine, "before_cursor_execute", record)
    writes = [s for s in sent if s[0].lstrip().split(None, 1)[0].upper() not in _READS]
    named = [s[0] for s in writes if scratch in s[0]]
    if named:
        raise AssertionError(f"a migration names its schema, so it cannot be replayed: {named}")
    return writes


def _batched(statements: list[Statement]) -> list[Statement]:
    """Consecutive statements without parameters as one script: one round trip for them."""
    out: list[Statement] = []
    for sql, params, many in statements:
        if not many and not params and out and not out[-1][1] and not out[-1][2]:
            out[-1] = (f"{out[-1][0]};\n{sql}", None, False)
        else:
            out.append((sql, params, many))
    return out


def drop_kept() -> None:
    """Drop the schemas kept for further tests (at the end of the run). In a thread of its
    own: the main thread's event loop, if any, is not this function's to use."""

    async def drop() -> None:
        for name in _kept:
            await backends.postgres_execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        _kept.clear()

    if _kept:
        _in_thread(drop())


def _in_thread(work: Coroutine[Any, Any, None]) -> None:
    thread = threading.Thread(target=asyncio.run, args=(work,))
    thread.start()
    thread.join()
