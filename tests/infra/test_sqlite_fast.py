"""SQLite's fast path (infra/sqlite_fast.py) gives what the plain aiosqlite path gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from infra import sqlite_fast
from infra.db import Database, make_engine


def _insert(conn: Connection, *names: str) -> list[int]:
    conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": n} for n in names])
    return list(conn.execute(text("SELECT id FROM t ORDER BY id")).scalars())


def _insert_then_fail(conn: Connection) -> None:
    conn.execute(text("INSERT INTO t (name) VALUES ('lost')"))
    raise ValueError("changed my mind")


async def _twice(db: Database) -> None:
    async with db.write() as s:
        conn = await s.connection()
        await conn.execute(text("INSERT INTO t (name) VALUES ('d')"))
        await conn.execute(text("INSERT INTO t (name) VALUES ('d')"))


async def _story(db: Database) -> list[Any]:
    """A run of reads and writes, with what each one answered."""
    seen: list[Any] = []
    async with db.write() as s:
        conn = await s.connection()
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])
        back = await conn.execute(text("INSERT INTO t (name) VALUES ('c') RETURNING id, name"))
        seen.append(back.all())
        moved = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id < 3"))
        seen.append(moved.rowcount)
    with pytest.raises(IntegrityError):
        await _twice(db)
    async with db.write():
        pass  # a transaction that runs nothing
    seen.append(await db.write_sync(_insert, "e", "f"))
    with pytest.raises(ValueError, match="changed my mind"):
        await db.write_sync(_insert_then_fail)
    async with db.read() as s:
        conn = await s.connection()
        result = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
        seen.append([tuple(row) for row in result])
        seen.append((await conn.execute(text("SELECT count(*) FROM t WHERE 0"))).scalar_one())
    await db.checkpoint()
    return seen


async def test_the_fast_path_answers_as_the_plain_one(tmp_path: Path) -> None:
    """The same statements give the same rows, counts, errors and rollbacks either way."""
    stories = {}
    for fast in (True, False):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/{fast}.db", fast_sqlite=fast)
        assert sqlite_fast.in_use(engine) is fast
        db = Database(engine)
        try:
            stories[fast] = await _story(db)
        finally:
            await db.close()
    assert stories[True] == stories[False]
    assert stories[True][-2] == [(1, "a!"), (2, "b!"), (3, "c"), (4, "e"), (5, "f")]
