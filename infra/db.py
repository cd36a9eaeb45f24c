"""The database: one async engine, read and write sessions, and the column types we share.

SQLite runs in WAL mode with foreign keys on; write transactions start with
`BEGIN IMMEDIATE` so that a transaction that reads before it writes takes the write lock
up front instead of failing with SQLITE_BUSY when it tries to upgrade.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import structlog
from sqlalchemy import Connection, DateTime, Engine, create_engine, event, text
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import EMPTY_DICT
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

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


# -- SQLite statements in one thread hand-off ----------------------------------------------
#
# aiosqlite runs each call on the connection's own thread, and SQLAlchemy's adapter makes
# four calls per statement (open cursor, execute, fetch, close): four round trips between
# the event loop and that thread, each waiting for the busy loop to come round again.
# This cursor does the four in one call, and a transaction's BEGIN travels with its first
# statement (a transaction that runs none costs no round trip at all). Everything else
# (connections, server-side cursors, error mapping) is SQLAlchemy's aiosqlite adapter.


def _run_statement(
    conn: sqlite3.Connection, begin: str | None, operation: str, parameters: Any, many: bool
) -> tuple[Any, list[Any], int, int | None]:
    cursor = conn.cursor()
    try:
        if begin is not None:
            cursor.execute(begin)
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No driver cursor is opened here: each statement opens and closes its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid or 0

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver: Any = self._connection  # an aiosqlite.Connection
        adapted: Any = self._adapt_connection
        async with adapted._execute_mutex:
            begin, adapted.pending_begin = adapted.pending_begin, None
            result = await driver._execute(
                _run_statement, driver._conn, begin, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)


class _OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("pending_begin",)
    _cursor_cls = _OneHopCursor  # type: ignore[assignment]

    pending_begin: str | None
    """A BEGIN not sent yet: it goes with the transaction's first statement."""

    def commit(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None  # nothing ran: nothing to commit
            return
        super().commit()

    def rollback(self) -> None:
        if self.pending_begin is not None:
            self.pending_begin = None
            return
        super().rollback()


class _OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        connection = _OneHopConnection(self, adapted._connection)
        connection.pending_begin = None
        return connection


CONNECT_TIMEOUT_S = 5.0


def make_engine(url: str, *, search_path: str | None = None, pool_size: int = 10) -> AsyncEngine:
    """Create the engine for a URL, with SQLite pragmas or a PostgreSQL schema applied."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            module=_OneHopDbapi(__import__("aiosqlite"), sqlite3),
            # Every transaction is ended by SQLAlchemy before its connection goes back to
            # the pool; the pool's extra ROLLBACK would be one more hand-off to the thread.
            pool_reset_on_return=None,
        )
        _configure_sqlite(engine)
        return engine
    # asyncpg waits 60 s for a connection by default: a request would hang that long on a
    # database host that drops packets, instead of answering 503 at once.
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
    if search_path:
        connect_args["server_settings"] = {"search_path": search_path}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so that we can say BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "connect", _sqlite_pragmas)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
        conn.connection.dbapi_connection.pending_begin = f"BEGIN {mode}"


class _WriterBusy(Exception):
    """Another process holds SQLite's write lock."""


def _sqlite_writer_engine(engine: AsyncEngine) -> Engine:
    """A blocking engine on the same SQLite file, for transactions run whole at once."""
    writer = create_engine(
        engine.url.set(drivername="sqlite"),
        # Used on the event loop's thread and, while another process writes, on a thread
        # of its own; never both at once (Database._write_turn).
        connect_args={"check_same_thread": False},
        pool_size=1,
        pool_reset_on_return=None,
    )

    @event.listens_for(writer, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        _sqlite_pragmas(dbapi_connection, record)
        # Checkpoints (copying the log into the database, with an fsync) would stall the
        # event loop in a commit here; Database.checkpoint() runs them off the hot path.
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    return writer


class _SqliteWriter:
    """The connection that runs `Database.write_sync` transactions, open between them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = _sqlite_writer_engine(engine)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="tolk-sqlite-writer")
        self._conn: Connection | None = None
        self._busy_timeout_ms = -1

    def run(self, fn: Callable[..., T], args: Any, kwargs: Any, *, wait: bool) -> T:
        """One transaction; without `wait`, _WriterBusy at once if another process writes."""
        conn = self._conn
        if conn is None or conn.invalidated:
            conn = self._conn = self.engine.connect()
            self._busy_timeout_ms = -1
        driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        timeout_ms = 30_000 if wait else 0
        if timeout_ms != self._busy_timeout_ms:
            driver.execute(f"PRAGMA busy_timeout={timeout_ms}")
            self._busy_timeout_ms = timeout_ms
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if wait or exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            raise _WriterBusy() from None
        # SQLAlchemy's commit and rollback end the transaction begun above.
        with conn.begin():
            return fn(conn, *args, **kwargs)

    def close(self) -> None:
        """Close the connection (after a transaction still running on the thread)."""
        self.thread.shutdown()
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()


class Database:
    """Hands out sessions: `write()` for a transaction that changes state, `read()` for queries."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._read = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._write = async_sessionmaker(
            engine.execution_options(**{_WRITE: True}),
            class_=AsyncSession,
            expire_on_commit=False,
        )
        # SQLite has one writer at a time. Queueing writers here, in order, beats letting
        # them collide in BEGIN IMMEDIATE, where the busy handler sleeps up to 100 ms a try.
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._writer = _SqliteWriter(engine) if engine.dialect.name == "sqlite" else None
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

        For short transactions on a hot path. On SQLite it runs at once, on the event
        loop's thread: the transaction's statements take less time than a trip to a
        driver thread each, and the session machinery is skipped. Only while another
        process holds the write lock does it wait, on a thread of its own. On PostgreSQL
        it runs on the async driver like any other transaction.
        """
        if self._writer is None:
            try:
                async with self.engine.begin() as conn:
                    result = await conn.run_sync(fn, *args, **kwargs)
            except Exception as exc:
                self._reraise(exc)
            self.outages.up()
            return result
        assert self._write_turn is not None
        async with self._write_turn:
            writer = self._writer
            try:
                return writer.run(fn, args, kwargs, wait=False)
            except _WriterBusy:
                log.info("sqlite_write_lock_busy")
            # The caller's context (a request's log fields) goes along to the thread.
            context = contextvars.copy_context()
            run = functools.partial(context.run, writer.run, fn, args, kwargs, wait=True)
            return await asyncio.get_running_loop().run_in_executor(writer.thread, run)

    async def checkpoint(self) -> None:
        """Copy SQLite's write-ahead log into the database file (PASSIVE: waits for
        nobody), so that no request's commit has to; a no-op on PostgreSQL."""
        if self._writer is None:
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


def instance_from_row(model: type[M], row: dict[str, Any]) -> M:
    """A transient instance of a table model holding a row as written: every column given,
    no validation and no attribute events (a thirtieth of the constructor's cost)."""
    # Its attributes work only once the mappers are configured, which any ORM query does
    # first; a process whose first use of a model is this one must do it here.
    configure_mappers()
    instance: M = instrumentation.manager_of_class(model).new_instance()
    instance.__dict__.update(row)
    return instance


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
