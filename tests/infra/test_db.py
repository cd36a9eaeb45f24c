"""The database layer: SQLite statements in one thread hand-off each, and whole blocking
transactions (`write_sync`) on both backends."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from infra.db import Database, make_engine
from infra.outages import Unavailable
from tests import backends
from tests.conftest import Stack
from tests.processes import free_port
from tests.waiting import eventually, until


async def _with_table(db: Database, id_type: str) -> Database:
    async with db.write() as s:
        conn = await s.connection()
        await conn.execute(text(f"CREATE TABLE t (id {id_type} PRIMARY KEY, name TEXT UNIQUE)"))
    return db


@pytest.fixture
async def sqlite_db(tmp_path: Path):
    db = await _with_table(Database(make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")), "INTEGER")
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


def _insert(conn: Connection, *names: str) -> int:
    conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": n} for n in names])
    return len(names)


def _insert_then_fail(conn: Connection) -> None:
    _insert(conn, "lost")
    raise ValueError("changed my mind")


async def _names(db: Database) -> list[str]:
    async with db.read() as s:
        conn = await s.connection()
        return list((await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars())


@pytest.fixture
async def stack_db(stack: Stack):
    # INTEGER PRIMARY KEY numbers rows on SQLite; PostgreSQL needs SERIAL for that.
    id_type = "INTEGER" if stack.name == "sqlite" else "SERIAL"
    engine = make_engine(stack.database_url, search_path=stack.search_path)
    db = await _with_table(Database(engine), id_type)
    yield db
    await db.close()


class TestWriteSync:
    async def test_commits_what_it_returns_and_rolls_back_what_raises(
        self, stack_db: Database
    ) -> None:
        """A blocking transaction function commits as a whole, or leaves nothing behind."""
        assert await stack_db.write_sync(_insert, "a", "b") == 2
        with pytest.raises(ValueError, match="changed my mind"):
            await stack_db.write_sync(_insert_then_fail)
        assert await stack_db.write_sync(_insert, "c") == 1
        assert await _names(stack_db) == ["a", "b", "c"]

    async def test_waits_for_another_writer_without_stopping_the_loop(
        self, sqlite_db: Database, tmp_path: Path
    ) -> None:
        """While another process holds SQLite's write lock, the transaction waits for it on
        a thread: the event loop goes on (a timer fires meanwhile) and nothing is lost."""
        other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t (name) VALUES ('other')")
        ours = asyncio.ensure_future(sqlite_db.write_sync(_insert, "ours"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ours), 0.2)
        other.execute("COMMIT")
        other.close()
        assert await ours == 1
        assert await _names(sqlite_db) == ["other", "ours"]

    async def test_the_database_file_takes_the_log_only_at_checkpoints(
        self, sqlite_db: Database, tmp_path: Path
    ) -> None:
        """Commits leave their pages in the write-ahead log (no fsync in a request);
        `checkpoint()` copies them into the database file."""

        def in_file() -> list[str]:
            # immutable=1 reads the database file alone, ignoring the log.
            raw = sqlite3.connect(f"file:{tmp_path / 't.db'}?immutable=1", uri=True)
            try:
                return [name for (name,) in raw.execute("SELECT name FROM t")]
            finally:
                raw.close()

        await sqlite_db.checkpoint()  # the table
        await sqlite_db.write_sync(_insert, "logged")
        assert in_file() == []
        await sqlite_db.checkpoint()
        assert in_file() == ["logged"]


class TestStatement:
    async def test_one_statement_reads_and_writes_on_its_own(self, stack_db: Database) -> None:
        """A single statement answers its rows, and a write through it is there at once
        for every later transaction (no transaction left open to commit)."""
        await stack_db.write_sync(_insert, "a", "b")
        rename = text("UPDATE t SET name = :new WHERE name = :old")
        assert await stack_db.statement(rename, {"new": "c", "old": "a"}) == []
        rows = await stack_db.statement(text("SELECT name FROM t WHERE name <> :n"), {"n": "x"})
        assert sorted(name for (name,) in rows) == ["b", "c"]
        assert await _names(stack_db) == ["c", "b"]


class TestOutage:
    async def test_a_database_nobody_answers_for_is_unavailable_and_counted_once(self) -> None:
        """No server behind the URL: every kind of transaction raises Unavailable (503),
        and the outage is noted once, however many fail."""
        port = free_port()
        db = Database(make_engine(f"postgresql+asyncpg://tolk@127.0.0.1:{port}/none"))
        try:
            with pytest.raises(Unavailable):
                async with db.read() as s:
                    await (await s.connection()).execute(text("SELECT 1"))
            with pytest.raises(Unavailable):
                async with db.write() as s:
                    await (await s.connection()).execute(text("SELECT 1"))
            with pytest.raises(Unavailable):
                await db.write_sync(lambda conn: conn.execute(text("SELECT 1")))
            with pytest.raises(Unavailable):
                await db.statement(text("SELECT 1"), {})
            with pytest.raises(Unavailable):
                await db.ping()
            assert not db.outages.is_up
            assert db.outages.count == 1
        finally:
            await db.close()

    async def test_errors_of_the_statement_or_the_caller_are_no_outage(
        self, sqlite_db: Database
    ) -> None:
        """A refused statement, or a client that went away while a session was open, is
        raised as it is and leaves the database up."""
        async with sqlite_db.write() as s:
            await (await s.connection()).execute(text("INSERT INTO t (id, name) VALUES (1, 'a')"))
        with pytest.raises(IntegrityError):
            async with sqlite_db.write() as s:
                await (await s.connection()).execute(
                    text("INSERT INTO t (id, name) VALUES (2, 'a')")
                )

        async def client_goes_away() -> None:
            async with sqlite_db.read() as s:
                await (await s.connection()).execute(text("SELECT 1"))
                raise ConnectionResetError("the client went away")

        with pytest.raises(ConnectionResetError):
            await client_goes_away()
        assert sqlite_db.outages.is_up
        assert sqlite_db.outages.count == 0


@pytest.fixture
async def pg_db():
    async with backends.postgres_schema() as schema:
        engine = make_engine(backends.POSTGRES_URL, search_path=schema)
        db = await _with_table(Database(engine), "SERIAL")
        yield db
        await db.close()


async def _pooled_backend(db: Database) -> tuple[int, Any]:
    """The server's process id of the connection the pool hands out next, and that
    connection's client side (asyncpg's)."""
    async with db.read() as s:
        conn = await s.connection()
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        return pid, (await conn.get_raw_connection()).driver_connection


async def _end_backend(backend: tuple[int, Any]) -> None:
    """End a connection from the server's side, as a restart or an administrator would,
    and wait until the server has let it go and the client has read its goodbye: the
    server's last message and the connection's end may arrive apart, and a connection
    taken from the pool between them meets the failure `Database` answers with 503 once
    (the trade-off docs/operations.md names), not the ended connection tested here."""
    pid, client = backend
    admin = await asyncpg.connect(backends.POSTGRES_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
            return await admin.fetchval(sql, pid) == 0

        await eventually(gone)
    finally:
        await admin.close()
    await until(client.is_closed)


class TestConnectionsTheServerEnded:
    async def test_every_kind_of_transaction_goes_through_on_a_fresh_connection(
        self, pg_db: Database
    ) -> None:
        """PostgreSQL ended the pool's connection (restarted, or an administrator ended
        it): the next read, write, blocking transaction or single statement goes through
        on a fresh one, and no outage is noted."""
        await _end_backend(await _pooled_backend(pg_db))
        assert await _names(pg_db) == []
        await _end_backend(await _pooled_backend(pg_db))
        async with pg_db.write() as s:
            await (await s.connection()).execute(text("INSERT INTO t (name) VALUES ('w')"))
        await _end_backend(await _pooled_backend(pg_db))
        assert await pg_db.write_sync(_insert, "s") == 1
        await _end_backend(await _pooled_backend(pg_db))
        rows = await pg_db.statement(text("SELECT name FROM t ORDER BY id"), {})
        assert [name for (name,) in rows] == ["w", "s"]
        assert pg_db.outages.is_up
        assert pg_db.outages.count == 0

    async def test_a_transaction_whose_connection_dies_before_its_commit_runs_once_more(
        self, pg_db: Database
    ) -> None:
        """The connection dies in the middle of a blocking transaction: what it had done is
        gone with it, and the transaction runs again on a fresh connection, once."""
        runs: list[int] = []

        def insert_on_a_dying_connection(conn: Connection) -> int:
            runs.append(len(runs))
            _insert(conn, "once")
            if len(runs) == 1:
                conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            return len(runs)

        assert await pg_db.write_sync(insert_on_a_dying_connection) == 2
        assert await _names(pg_db) == ["once"]
        assert pg_db.outages.is_up

    async def test_a_connection_that_dies_again_is_an_outage(self, pg_db: Database) -> None:
        """Dying on the fresh connection too, the transaction is not tried a third time:
        the caller gets Unavailable (503)."""

        def end_own_connection(conn: Connection) -> None:
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

        with pytest.raises(Unavailable):
            await pg_db.write_sync(end_own_connection)
        assert await _names(pg_db) == []
