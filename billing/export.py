"""Usage exports (JSON, machine CSV, German Excel CSV, XLSX), streamed in constant memory.

Rows come from one server-side cursor in batches, in record order (`record_order`: by
connected_at, the segments of a consultation together), and each batch is written out
before the next is fetched. The machine CSV's lines are built
by the database (billing.sqltext, the fast path) or, the same bytes, in Python
(billing.tables); the tables for people (German CSV, XLSX) are built in Python, where
local times and language names are at hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import structlog
from sqlalchemy import ColumnElement, case, func, literal_column, select

from billing.cells import csv_line
from billing.models import ExportAudit, UsageRecord
from billing.rules import call_reference, consultation_reference
from billing.sqltext import machine_line_select, rfc3339
from billing.tables import (
    MACHINE_COLUMNS,
    RECORD_COLUMNS,
    Lang,
    PeopleRows,
    german_csv_line,
    headers,
    machine_line,
    raw_select,
)
from infra.db import Database

log = structlog.get_logger(__name__)

ExportFormat = Literal["json", "csv", "xlsx"]
Dialect = Literal["de"] | None
Write = Callable[[bytes], Awaitable[None]]

BATCH_ROWS = 5000
UTF8_BOM = b"\xef\xbb\xbf"
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BERLIN = ZoneInfo("Europe/Berlin")

_T = UsageRecord.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which usage records an export or summary covers: connected_at in [start, end)."""

    start: datetime | None = None
    end: datetime | None = None
    organization_id: str | None = None
    language: str | None = None
    interpreter_id: str | None = None
    organizations: tuple[str, ...] | None = None
    """The organisations the asker may see (billing.scope); None: every one."""
    site_id: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this filter."""
        found: list[ColumnElement[bool]] = []
        if self.start is not None:
            found.append(_T.connected_at >= self.start)
        if self.end is not None:
            found.append(_T.connected_at < self.end)
        if self.organization_id is not None:
            found.append(_T.organization_id == self.organization_id)
        if self.language is not None:
            found.append(_T.language == self.language)
        if self.interpreter_id is not None:
            found.append(_T.interpreter_id == self.interpreter_id)
        if self.organizations is not None:
            found.append(_T.organization_id.in_(self.organizations))
        if self.site_id is not None:
            found.append(_T.site_id == self.site_id)
        return found

    def describe(self) -> str:
        """The filter as JSON text, for the audit log."""
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS).decode()


def record_order() -> list[ColumnElement[Any]]:
    """The order of records in every export: by when they connected, except that the
    segments of a consultation sit together, in time order, where its first segment
    connected.

    An ordinary call's key is (connected_at, '', connected_at, call_id), the order of
    calls as it always was; a segment's is (its consultation's first connected_at over
    all its records, room_id, connected_at, call_id). Taken over all of the room's
    records, so re-exporting a closed period orders it the same.
    """
    segment = UsageRecord.__table__.alias("segment")  # type: ignore[attr-defined]
    first = (
        select(func.min(segment.c.connected_at))
        .where(segment.c.room_id == _T.room_id)
        .scalar_subquery()
    )
    return [
        case((_T.room_id.is_(None), _T.connected_at), else_=first),
        func.coalesce(_T.room_id, literal_column("''")),
        _T.connected_at,
        _T.call_id,
    ]


def json_select() -> Any:
    """The columns of a JSON record, times already RFC 3339 text."""
    columns = [
        rfc3339(getattr(_T, name)).label(name) if name.endswith("_at") else getattr(_T, name)
        for name in RECORD_COLUMNS
    ]
    return select(*columns)


async def usage_batches(
    db: Database,
    usage: UsageFilter,
    columns: Any,
    batch_rows: int = BATCH_ROWS,
    *,
    scalars: bool = False,
) -> AsyncIterator[Sequence[Any]]:
    """The records of a filter as row batches, in `record_order`; with `scalars`, each
    row is the value of the one column selected.

    One server-side cursor (asyncpg cursor, SQLite stepping) fetches `batch_rows` at a
    time, so memory does not grow with the size of the export.
    """
    query = (
        columns.where(*usage.conditions())
        .order_by(*record_order())
        .execution_options(yield_per=batch_rows)
    )
    async with db.engine.connect() as conn:
        result = await conn.stream(query)
        # Scalars skip building a Row object per record.
        batches = (
            result.scalars().partitions(batch_rows) if scalars else result.partitions(batch_rows)
        )
        async for batch in batches:
            yield batch


Batches = AsyncIterator[Sequence[Any]]


async def _write_json(batches: Batches, write: Write) -> None:
    first = True
    await write(b"[")
    async for batch in batches:
        encoded = orjson.dumps(
            [
                {
                    **dict(zip(RECORD_COLUMNS, row, strict=True)),
                    "call_ref": call_reference(row.call_id),
                    "consultation_ref": consultation_reference(row.room_id),
                }
                for row in batch
            ]
        )
        await write((b"" if first else b",") + encoded[1:-1])
        first = False
    await write(b"]")


async def _write_machine_csv(batches: Batches, write: Write, *, ready: bool) -> None:
    await write(csv_line(MACHINE_COLUMNS, ",").encode())
    async for batch in batches:
        # Lines from the database are ready bytes (billing.sqltext); rows get built here.
        await write(b"".join(batch if ready else map(machine_line, batch)))


async def _write_german_csv(batches: Batches, write: Write, rows: PeopleRows) -> None:
    # German Excel reads a CSV as UTF-8 only when it starts with a byte order mark.
    await write(UTF8_BOM + csv_line(headers("de"), ";").encode())
    async for batch in batches:
        await write(b"".join(german_csv_line(rows.values(row)) for row in batch))


@dataclass(frozen=True, slots=True)
class ExportKind:
    """What an export writes: format, CSV dialect, the language of a table for people,
    and the time zone of its local times."""

    fmt: ExportFormat
    dialect: Dialect = None
    lang: Lang = "de"
    zone: ZoneInfo = BERLIN
    fast_csv: bool = True
    """The machine CSV's lines built by the database (False: in Python, same bytes)."""

    @property
    def audit_name(self) -> str:
        """The format as the export audit records it."""
        return f"{self.fmt}-{self.dialect}" if self.fmt == "csv" and self.dialect else self.fmt


async def _write(
    db: Database, usage: UsageFilter, kind: ExportKind, batches: Batches, write: Write
) -> None:
    if kind.fmt == "json":
        await _write_json(batches, write)
    elif kind.fmt == "csv" and kind.dialect is None:
        await _write_machine_csv(batches, write, ready=kind.fast_csv)
    elif kind.fmt == "csv":
        await _write_german_csv(batches, write, PeopleRows(kind.zone, "de"))
    else:
        # Imported here: only XLSX exports pay for openpyxl.
        from billing.summary import usage_summary
        from billing.xlsx import write_xlsx

        async with db.read() as session:
            summary = await usage_summary(session, usage, "organization", kind.zone)
            by_site = await usage_summary(session, usage, "site", kind.zone)
        await write_xlsx(batches, write, PeopleRows(kind.zone, kind.lang), summary, by_site)


def _columns(kind: ExportKind) -> Any:
    if kind.fmt == "json":
        return json_select()
    if kind.fmt == "csv" and kind.dialect is None and kind.fast_csv:
        return machine_line_select(MACHINE_COLUMNS)
    return raw_select()


async def export_usage(
    db: Database,
    usage: UsageFilter,
    kind: ExportKind,
    write: Write,
    *,
    user_id: str | None,
    now: datetime,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Write an export through `write` and log it in the audit table; returns the row count.

    The HTTP export and `tolk export-usage` both come here. `user_id` is None for the
    command line.
    """
    sent = 0
    ready = kind.fmt == "csv" and kind.dialect is None and kind.fast_csv

    async def counted() -> Batches:
        nonlocal sent
        async for batch in usage_batches(db, usage, _columns(kind), batch_rows, scalars=ready):
            yield batch
            # Resumed only when the writer asks for more: this batch has been written.
            sent += len(batch)

    complete = False
    try:
        await _write(db, usage, kind, counted(), write)
        complete = True
    finally:
        # An export that broke off (a client that went away) is audited with the rows it
        # had been sent: they may have left the building all the same.
        async with db.write() as session:
            session.add(
                ExportAudit(
                    user_id=user_id,
                    at=now,
                    format=kind.audit_name,
                    filters=usage.describe(),
                    rows=sent,
                )
            )
        event = "usage_exported" if complete else "usage_export_aborted"
        log.info(event, user_id=user_id, format=kind.fmt, rows=sent)
    return sent
