"""The database layer's SQLite driver: every statement in one thread hand-off, same results."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from infra.db import Database, make_engine


@pytest.fixture
async def sqlite_db(tmp_path: Path):
    db = Database(make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db"))
    async with db.write() as s:
        conn = await s.connection()
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield db
    await db.close()


class TestSqliteStatements:
    async def test_rows_counts_and_returning(self, sqlite_db: Database) -> None:
        """Inserts, RETURNING, row counts and many-row parameters come back as before."""
        async with sqlite_db.write() as s:
            conn = await s.connection()
            await conn.execute(
                text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}, {"n": "c"}]
            )
            back = await conn.execute(text("INSERT INTO t (name) VALUES ('d') RETURNING id"))
            assert back.scalar_one() == 4
            moved = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id < 3"))
            assert moved.rowcount == 2
        async with sqlite_db.read() as s:
            conn = await s.connection()
            rows = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert rows == ["a!", "b!", "c", "d"]

    async def test_constraint_errors_roll_the_transaction_back(self, sqlite_db: Database) -> None:
        """A unique violation raises SQLAlchemy's IntegrityError and nothing of it stays."""

        async def twice() -> None:
            async with sqlite_db.write() as s:
                conn = await s.connection()
                await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
                await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))

        with pytest.raises(IntegrityError):
            await twice()
        async with sqlite_db.read() as s:
            conn = await s.connection()
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
