"""The database: one async engine, read and write sessions, and the column types we share.

SQLite runs in WAL mode with foreign keys on; write transactions start with
`BEGIN IMMEDIATE` so that a transaction that reads before it writes takes the write lock
up front instead of failing with SQLITE_BUSY when it tries to upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import structlog
from sqlalchemy import Connection, DateTime, event, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from infra import sqlite_fast
from infra.outages import Outages, Unavailable, is_unreachable

log = structlog.get_logger(__name__)

_WRITE = "tolk_write"
P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=SQLModel)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text; a fixed naive UTC form keeps ORDER BY and comparisons right.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(enum_class: type[StrEnum], length: int = 20) -> SAEnum:
    """A column type storing a StrEnum by value in a VARCHAR and loading it as the enum."""
    return SAEnum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


CONNECT_TIMEOUT_S = 5.0


def make_engine(
    url: str, *, search_path: str | None = None, pool_size: int = 10, fast_sqlite: bool = True
) -> AsyncEngine:
    """Create the engine for a URL, with SQLite pragmas or a PostgreSQL schema applied.

    `fast_sqlite` chooses SQLite's fast path (infra/sqlite_fast.py); without it, SQLAlchemy's
    aiosqlite adapter as shipped.
    """
    if url.startswith("sqlite"):
        fast: dict[str, Any] = {}
        if fast_sqlite:
            # Every transaction is ended by SQLAlchemy before its connection goes back to
            # the pool; the pool's extra ROLLBACK would be one more hand-off to the thread.
            fast = {"module": sqlite_fast.one_hop_dbapi(), "pool_reset_on_return": None}
        engine = create_async_engine(url, connect_args={"timeout": 30}, **fast)
        _configure_sqlite(engine, fast=fast_sqlite)
        return engine
    # asyncpg waits 60 s for a connection by default: a request would hang that long on a
    # database host that drops packets, instead of answering 503 at once.
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
    if search_path:
        connect_args["server_settings"] = {"search_path": search_path}
    # No pool_pre_ping: on asyncpg it is BEGIN, `;` and ROLLBACK, three round trips at every
    # checkout. A connection the server ended is dropped at checkout instead (`_drop_closed`),
    # and one that dies unnoticed costs a retry where that is safe (`Database`).
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # asyncpg notices the server's goodbye (a terminated backend, a restart) as soon as the
    # loop reads it; the pool then takes the next connection or opens a fresh one.
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("connection closed by the server")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so that we can say BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _configure_sqlite(engine: AsyncEngine, *, fast: bool) -> None:
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "connect", _sqlite_pragmas)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        if fast:
            sqlite_fast.defer_begin(conn.connection.dbapi_connection, f"BEGIN {mode}")
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """Hands out sessions: `write()` for a transaction that changes state, `read()` for queries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._read = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self._write = async_sessionmaker(
            self._write_engine, class_=AsyncSession, expire_on_commit=False
        )
        # SQLite has one writer at a time. Queueing writers here, in order, beats letting
        # them collide in BEGIN IMMEDIATE, where the busy handler sleeps up to 100 ms a try.
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._writer = (
            sqlite_fast.SqliteWriter(engine, _sqlite_pragmas)
            if sqlite_fast.in_use(engine)
            else None
        )
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.outages = Outages("database")
        """Whether the database answers, as the last transaction found it."""

    def _reraise(self, exc: Exception) -> NoReturn:
        """Raise a transaction's error again: as `Unavailable` (503) when the server
        cannot be reached (noting the outage), as itself otherwise."""
        if isinstance(exc, Unavailable) or not is_unreachable(exc):
            raise exc
        self.outages.down(exc)
        raise Unavailable() from exc

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed when the block ends, rolled back on error."""
        try:
            if self._write_turn is None:
                async with self._write() as session, session.begin():
                    yield session
            else:
                async with self._write_turn, self._write() as session, session.begin():
                    yield session
        except Exception as exc:
            self._reraise(exc)
        self.outages.up()

    async def write_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(connection, ...)` as one write transaction and return what it returns.

        For short transactions on a hot path: the session machinery is skipped. On SQLite's
        fast path (infra/sqlite_fast.py) it runs on the event loop's thread, waiting on a
        thread of its own only while another process holds the write lock; otherwise it
        runs on the async driver like any other transaction. On a pooled connection that
        turns out dead before the COMMIT, `fn` runs once more on a fresh one: it must
        change nothing but the database.
        """
        if self._writer is None:
            for retry in (True, False):
                committing = False
                try:
                    turn = self._write_turn or contextlib.nullcontext()
                    async with turn, self._write_engine.begin() as conn:
                        result = await conn.run_sync(fn, *args, **kwargs)
                        committing = True
                except Exception as exc:
                    # Nothing was committed: the work runs again on a fresh connection.
                    if retry and not committing and _connection_lost(exc):
                        log.info("database_connection_lost_retrying")
                        continue
                    self._reraise(exc)
                break
            self.outages.up()
            return result
        assert self._write_turn is not None
        async with self._write_turn:
            writer = self._writer
            try:
                return writer.run(fn, args, kwargs, wait=False)
            except sqlite_fast.WriterBusy:
                log.info("sqlite_write_lock_busy")
            # The caller's context (a request's log fields) goes along to the thread.
            context = contextvars.copy_context()
            run = functools.partial(context.run, writer.run, fn, args, kwargs, wait=True)
            return await asyncio.get_running_loop().run_in_executor(writer.thread, run)

    async def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file (PASSIVE: waits for
        nobody), so that no request's commit has to; a no-op on PostgreSQL."""
        if self.dialect != "sqlite":
            return
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (its transaction is rolled back at the end)."""
        try:
            async with self._read() as session:
                yield session
        except Exception as exc:
            self._reraise(exc)
        self.outages.up()

    async def statement(self, statement: Executable, params: dict[str, Any]) -> list[Sequence[Any]]:
        """Run one statement on its own and return its rows (none for a statement without).

        On PostgreSQL it runs outside a transaction (autocommit: no BEGIN and no COMMIT or
        ROLLBACK, one round trip), once more on a fresh connection if the pooled one turns
        out dead; it must be safe to run twice (a read, or an idempotent write). On SQLite
        it is a transaction of its own.
        """
        if self.dialect == "sqlite":
            if getattr(statement, "is_select", False):
                async with self.read() as session:
                    conn = await session.connection()
                    return _rows(await conn.execute(statement, params))
            return await self.write_sync(lambda conn: _rows(conn.execute(statement, params)))
        for retry in (True, False):
            try:
                async with self._autocommit.connect() as conn:
                    rows = _rows(await conn.execute(statement, params))
            except Exception as exc:
                if retry and _connection_lost(exc):
                    log.info("database_connection_lost_retrying")
                    continue
                self._reraise(exc)
            break
        self.outages.up()
        return rows

    async def ping(self) -> None:
        """Raise unless the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            self._reraise(exc)
        self.outages.up()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._writer is not None:
            self._writer.close()


def _rows(result: CursorResult[Any]) -> list[Sequence[Any]]:
    return list(result.all()) if result.returns_rows else []


def _connection_lost(exc: BaseException) -> bool:
    """Whether a statement failed because its pooled connection was dead (SQLAlchemy then
    invalidates it, and the pool's older connections with it)."""
    return getattr(exc, "connection_invalidated", False) is True


async def run_on(
    session: AsyncSession,
    fn: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run a blocking `fn(connection, ...)` inside an async session's transaction."""
    return await session.run_sync(lambda sync: fn(sync.connection(), *args, **kwargs))


def dialect_of(session: AsyncSession) -> str:
    """`sqlite` or `postgresql`: the backend a session talks to."""
    bind = session.bind
    return bind.dialect.name if bind is not None else "sqlite"


def conflict_insert(target: Any, dialect: str) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the backend's own dialect, which takes an ON CONFLICT clause."""
    return postgresql.insert(target) if dialect == "postgresql" else sqlite.insert(target)


def utcnow() -> datetime:
    """The wall clock in UTC; for column defaults only (services take a clock)."""
    return datetime.now(UTC)
