"""SQLite's fast path: statements in one thread hand-off, and write transactions run whole
on the event loop's thread. `make_engine(url, fast_sqlite=False)` is the plain path beside
it (SQLAlchemy's aiosqlite adapter as shipped); tests/infra/test_sqlite_fast.py holds the
two to the same results.

aiosqlite runs each call on the connection's own thread, and SQLAlchemy's adapter makes
four calls per statement (open cursor, execute, fetch, close): four round trips between
the event loop and that thread, each waiting for the busy loop to come round again.
`OneHopCursor` does the four in one call, and a transaction's BEGIN travels with its
first statement (a transaction that runs none costs no round trip at all). Everything
else (connections, server-side cursors, error mapping) is SQLAlchemy's aiosqlite adapter.

`SqliteWriter` runs `Database.write_sync` transactions on the loop's thread: a new
request's few statements take less time than one trip to a driver thread. What each
saves is measured by `python -m bench.compare --arm plain=TOLK_FAST_PATHS=false` and
recorded in bench/results/compare.md.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import EMPTY_DICT

T = TypeVar("T")


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


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statement (with its BEGIN, if pending) is one call on the thread."""

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


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """A connection that holds its BEGIN back until the first statement."""

    __slots__ = ("pending_begin",)
    _cursor_cls = OneHopCursor  # type: ignore[assignment]

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


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI adapter, handing out `OneHopConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        connection = OneHopConnection(self, adapted._connection)
        connection.pending_begin = None
        return connection


def one_hop_dbapi() -> OneHopDbapi:
    """The DBAPI module to give `create_async_engine(module=...)` for the fast path."""
    return OneHopDbapi(aiosqlite, sqlite3)


def in_use(engine: AsyncEngine) -> bool:
    """Whether an engine was made with the fast path."""
    return isinstance(engine.dialect.dbapi, OneHopDbapi)


def defer_begin(dbapi_connection: Any, begin: str) -> None:
    """Send `begin` with the connection's next statement (the engine's `begin` event)."""
    dbapi_connection.pending_begin = begin


class WriterBusy(Exception):
    """Another process holds SQLite's write lock."""


def _writer_engine(engine: AsyncEngine, on_connect: Callable[[Any, Any], None]) -> Engine:
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
        on_connect(dbapi_connection, record)
        # Checkpoints (copying the log into the database, with an fsync) would stall the
        # event loop in a commit here; Database.checkpoint() runs them off the hot path.
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    return writer


class SqliteWriter:
    """The connection that runs `Database.write_sync` transactions, open between them."""

    def __init__(self, engine: AsyncEngine, on_connect: Callable[[Any, Any], None]) -> None:
        self.engine = _writer_engine(engine, on_connect)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="tolk-sqlite-writer")
        self._conn: Connection | None = None
        self._busy_timeout_ms = -1

    def run(self, fn: Callable[..., T], args: Any, kwargs: Any, *, wait: bool) -> T:
        """One transaction; without `wait`, WriterBusy at once if another process writes."""
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
            raise WriterBusy() from None
        # SQLAlchemy's commit and rollback end the transaction begun above.
        with conn.begin():
            return fn(conn, *args, **kwargs)

    def close(self) -> None:
        """Close the connection (after a transaction still running on the thread)."""
        self.thread.shutdown()
        if self._conn is not None:
            self._conn.close()
        self.engine.dispose()
