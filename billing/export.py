"""Usage exports (JSON, CSV, German CSV, XLSX) and summaries, streamed in constant memory.

Rows come from one server-side cursor in batches, ordered by (connected_at, call_id), and
each batch is written out before the next is fetched. Timestamps and decimal amounts are
formatted by the database itself (see `rfc3339` and `decimal_amount`), so that a row goes
from the cursor into csv.writer untouched: that is what keeps a million-row export within
reach of `sqlite3 -csv` (bench/export_usage.py measures it).
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
import structlog
from sqlalchemy import ColumnElement, LargeBinary, String, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel.ext.asyncio.session import AsyncSession

from billing.cells import guard_sql, spreadsheet_text
from billing.models import ExportAudit, UsageRecord
from infra.db import Database
from infra.errors import InvalidInput

log = structlog.get_logger(__name__)

ExportFormat = Literal["json", "csv", "xlsx"]
Dialect = Literal["de"] | None
GroupBy = Literal["organization", "language", "interpreter", "month"]
Write = Callable[[bytes], Awaitable[None]]

RECORD_COLUMNS = (
    "call_id",
    "connected_at",
    "ended_at",
    "duration_s",
    "billable_s",
    "amount_cents",
    "currency",
    "language",
    "organization_id",
    "organization",
    "cost_center",
    "counsellor_id",
    "interpreter_id",
    "interpreter",
    "tariff",
    "end_reason",
)
"""The fields of a usage record, in the contract's order."""
TABLE_COLUMNS = (*RECORD_COLUMNS[:6], "amount", *RECORD_COLUMNS[6:])
"""CSV and XLSX columns: the record plus `amount`, the amount in currency units."""
BATCH_ROWS = 5000
XLSX_MAX_ROWS = 1_048_576
"""Excel's row limit per sheet; longer exports continue on a further sheet."""
UTF8_BOM = b"\xef\xbb\xbf"
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

_T = UsageRecord.__table__.c  # type: ignore[attr-defined]


class rfc3339(FunctionElement[str]):
    """A UTC timestamp column as RFC 3339 text with milliseconds and `Z`, as jsonio writes it."""

    type = String()
    name = "rfc3339"
    inherit_cache = True  # no state beyond its one clause


@compiles(rfc3339, "sqlite")
def _rfc3339_sqlite(element: rfc3339, compiler: SQLCompiler, **kw: Any) -> str:
    # UTCDateTime stores SQLite times as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC).
    value = compiler.process(element.clauses, **kw)
    return f"(substr({value}, 1, 10) || 'T' || substr({value}, 12, 12) || 'Z')"


@compiles(rfc3339, "postgresql")
def _rfc3339_postgresql(element: rfc3339, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return f"""to_char(({value}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


class decimal_amount(FunctionElement[str]):
    """Integer cents as a decimal with two places and a given separator (`1250` -> `12,50`)."""

    type = String()
    name = "decimal_amount"
    # The separator shapes the SQL text but is not a clause: never cache it.
    inherit_cache = False

    def __init__(self, cents: ColumnElement[int], separator: str) -> None:
        if separator not in (".", ","):
            raise ValueError("separator must be '.' or ','")
        self.separator = separator
        super().__init__(cents)


@compiles(decimal_amount, "sqlite")
def _decimal_sqlite(element: decimal_amount, compiler: SQLCompiler, **kw: Any) -> str:
    # Amounts are never negative (prices are >= 0), so integer division is the floor.
    value = compiler.process(element.clauses, **kw)
    return f"printf('%d{element.separator}%02d', ({value}) / 100, ({value}) % 100)"


@compiles(decimal_amount, "postgresql")
def _decimal_postgresql(element: decimal_amount, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    return (
        f"(({value}) / 100)::text || '{element.separator}' || lpad((({value}) % 100)::text, 2, '0')"
    )


CsvKind = Literal["id", "text", "time", "int", "amount"]


class csv_line(FunctionElement[bytes]):
    """A whole CSV line of a usage record with its CRLF, as UTF-8 bytes, built by the
    database in one expression.

    Each column has a kind: `id` (never needs quoting: generated ids, tags, codes),
    `text` (quoted exactly when csv.writer's QUOTE_MINIMAL would: when it holds the
    delimiter, a double quote, CR or LF; quotes inside doubled), `time` (RFC 3339 like
    `rfc3339`), `int`, and `amount` (cents as a decimal with the given mark). `id` and
    `text` cells get the prefix of billing.cells.spreadsheet_text (a generated id may
    start with `-`). Rows then arrive as one ready `bytes` each instead of seventeen
    Python objects, never decoded and encoded again, which is what brings a million-row
    export near `sqlite3 -csv` (bench/export_usage.py).
    """

    type = LargeBinary()
    name = "csv_line"
    # The delimiter and kinds shape the SQL text but are not clauses: never cache it.
    inherit_cache = False

    def __init__(
        self, columns: Sequence[tuple[ColumnElement[Any], CsvKind]], delimiter: str, mark: str
    ) -> None:
        if delimiter not in (",", ";") or mark not in (".", ","):
            raise ValueError("delimiter must be ',' or ';' and mark '.' or ','")
        self.kinds = tuple(kind for _, kind in columns)
        self.delimiter = delimiter
        self.mark = mark
        super().__init__(*(column for column, _ in columns))


def _csv_columns(element: csv_line, compiler: SQLCompiler, **kw: Any) -> list[tuple[str, str]]:
    return [
        (compiler.process(column, **kw), kind)
        for column, kind in zip(element.clauses, element.kinds, strict=True)
    ]


@compiles(csv_line, "sqlite")
def _csv_line_sqlite(element: csv_line, compiler: SQLCompiler, **kw: Any) -> str:
    # One printf: concatenating with || would copy the growing line once per column.
    formats: list[str] = []
    args: list[str] = []
    special = f"'*[\"{element.delimiter}' || char(10) || char(13) || ']*'"
    for v, kind in _csv_columns(element, compiler, **kw):
        if kind == "time":
            # 'YYYY-MM-DD HH:MM:SS.ffffff' -> 'YYYY-MM-DDTHH:MM:SS.fff' + 'Z'
            formats.append("%.23sZ")
            args.append(f"replace({v}, ' ', 'T')")
        elif kind == "int":
            formats.append("%d")
            args.append(v)
        elif kind == "amount":
            formats.append(f"%d{element.mark}%02d")
            args += [f"({v}) / 100", f"({v}) % 100"]
        elif kind == "text":
            formats.append("%s")
            inert = guard_sql(v, "sqlite")
            args.append(
                f"CASE WHEN {v} GLOB {special}"
                f" THEN '\"' || replace({inert}, '\"', '\"\"') || '\"' ELSE {inert} END"
            )
        else:
            formats.append("%s")
            args.append(guard_sql(v, "sqlite"))
    # The CRLF is part of the format; a BLOB comes to Python as bytes, left undecoded.
    line = element.delimiter.join(formats) + "\r\n"
    return f"CAST(printf('{line}', {', '.join(args)}) AS BLOB)"


@compiles(csv_line, "postgresql")
def _csv_line_postgresql(element: csv_line, compiler: SQLCompiler, **kw: Any) -> str:
    parts: list[str] = []
    for v, kind in _csv_columns(element, compiler, **kw):
        if kind == "time":
            parts.append(f"""to_char(({v}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')""")
        elif kind == "int":
            parts.append(f"({v})::text")
        elif kind == "amount":
            parts.append(
                f"(({v}) / 100)::text || '{element.mark}' || lpad((({v}) % 100)::text, 2, '0')"
            )
        elif kind == "text":
            inert = guard_sql(v, "postgresql")
            parts.append(
                f"CASE WHEN {v} ~ '[\"{element.delimiter}\\r\\n]'"
                f" THEN '\"' || replace({inert}, '\"', '\"\"') || '\"' ELSE {inert} END"
            )
        else:
            parts.append(guard_sql(v, "postgresql"))
    line = f" || '{element.delimiter}' || ".join(f"({p})" for p in parts)
    # bytea comes to Python as bytes, left undecoded.
    return f"convert_to({line} || chr(13) || chr(10), 'UTF8')"


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
        return found

    def describe(self) -> str:
        """The filter as JSON text, for the audit log."""
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS).decode()


def parse_bound(text: str, zone: ZoneInfo, field: str) -> datetime:
    """A period bound: a date (the start of that day in `zone`) or an RFC 3339 timestamp."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise InvalidInput(
                f"{field}: the timestamp needs a Z or an offset",
                field=field,
                problem_code="needs_offset",
            )
        return moment.astimezone(UTC)
    except ValueError:
        raise InvalidInput(
            f"{field}: give a date (2026-01-01) or an RFC 3339 timestamp",
            field=field,
            problem_code="bad_date",
        ) from None
    except OverflowError:  # in UTC it would fall before year 1 or after 9999
        raise InvalidInput(
            f"{field}: outside the years 1 to 9999", field=field, problem_code="bad_date"
        ) from None


def check_period(start: datetime | None, end: datetime | None) -> None:
    """Refuse a period that ends before it starts."""
    if start is not None and end is not None and end <= start:
        raise InvalidInput("to: must be after from", field="to", problem_code="not_after_from")


def record_select(fmt: ExportFormat) -> Any:
    """The typed columns of a record (JSON) or of a table row (`amount` added, XLSX)."""
    columns: list[Any] = [
        _T.call_id,
        rfc3339(_T.connected_at).label("connected_at"),
        rfc3339(_T.ended_at).label("ended_at"),
        _T.duration_s,
        _T.billable_s,
        _T.amount_cents,
    ]
    if fmt != "json":
        columns.append(decimal_amount(_T.amount_cents, ".").label("amount"))
    columns += [getattr(_T, name) for name in RECORD_COLUMNS[6:]]
    return select(*columns)


_CSV_KINDS: dict[str, CsvKind] = {
    "connected_at": "time",
    "ended_at": "time",
    "duration_s": "int",
    "billable_s": "int",
    "amount_cents": "int",
    "amount": "amount",
    "organization": "text",
    "cost_center": "text",
    "interpreter": "text",
    "tariff": "text",
}
"""Columns that are not `id`-like; the others are generated ids, tags, codes and reasons."""


def csv_line_select(dialect: Dialect) -> Any:
    """One column: the CSV line of each record (UTF-8 bytes with its CRLF)."""
    columns = [
        (_T.amount_cents if name == "amount" else getattr(_T, name), _CSV_KINDS.get(name, "id"))
        for name in TABLE_COLUMNS
    ]
    delimiter, mark = (";", ",") if dialect == "de" else (",", ".")
    return select(csv_line(columns, delimiter, mark).label("line"))


async def usage_batches(
    db: Database,
    usage: UsageFilter,
    columns: Any,
    batch_rows: int = BATCH_ROWS,
    *,
    scalars: bool = False,
) -> AsyncIterator[Sequence[Any]]:
    """The records of a filter as row batches, in (connected_at, call_id) order; with
    `scalars`, each row is the value of the one column selected.

    One server-side cursor (asyncpg cursor, SQLite stepping) fetches `batch_rows` at a
    time, so memory does not grow with the size of the export.
    """
    query = (
        columns.where(*usage.conditions())
        .order_by(_T.connected_at, _T.call_id)
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


async def _write_json(batches: AsyncIterator[Sequence[Sequence[Any]]], write: Write) -> int:
    rows = 0
    await write(b"[")
    async for batch in batches:
        encoded = orjson.dumps([dict(zip(RECORD_COLUMNS, row, strict=True)) for row in batch])
        await write((b"," if rows else b"") + encoded[1:-1])
        rows += len(batch)
    await write(b"]")
    return rows


async def _write_csv(
    batches: AsyncIterator[Sequence[bytes]], write: Write, dialect: Dialect
) -> int:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if dialect == "de" else ",", lineterminator="\r\n")
    writer.writerow(TABLE_COLUMNS)
    # German Excel reads a CSV as UTF-8 only when it starts with a byte order mark.
    head = buffer.getvalue().encode()
    await write(UTF8_BOM + head if dialect == "de" else head)
    rows = 0
    async for batch in batches:
        # Each row is one ready CSV line (see csv_line_select).
        await write(b"".join(batch))
        rows += len(batch)
    return rows


_AMOUNT = TABLE_COLUMNS.index("amount")


async def _write_xlsx(batches: AsyncIterator[Sequence[Sequence[Any]]], write: Write) -> int:
    # Imported here: only XLSX exports pay for openpyxl.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, TYPE_STRING

    workbook = Workbook(write_only=True)
    sheets = 0
    in_sheet = XLSX_MAX_ROWS
    sheet: Any = None

    def append(batch: Sequence[Sequence[Any]]) -> None:
        nonlocal sheet, sheets, in_sheet
        for row in batch:
            if in_sheet >= XLSX_MAX_ROWS:
                sheets += 1
                sheet = workbook.create_sheet("usage" if sheets == 1 else f"usage {sheets}")
                sheet.append(TABLE_COLUMNS)
                in_sheet = 1
            values = [text_cell(v) if isinstance(v, str) else v for v in row]
            values[_AMOUNT] = Decimal(row[_AMOUNT])
            sheet.append(values)
            in_sheet += 1

    def text_cell(value: str) -> Any:
        """Text as a string cell: openpyxl would type `=...` as a formula, `#N/A` as an error."""
        text = spreadsheet_text(value)
        if text[:1] != "=" and text not in ERROR_CODES:
            return text
        cell = WriteOnlyCell(sheet, text)
        cell.data_type = TYPE_STRING
        return cell

    rows = 0
    async for batch in batches:
        # openpyxl is synchronous and CPU-bound: keep it off the event loop.
        await asyncio.to_thread(append, batch)
        rows += len(batch)
    if sheets == 0:
        sheet = workbook.create_sheet("usage")
        sheet.append(TABLE_COLUMNS)
    # Write-only workbooks still need a file to zip into; stream it out afterwards.
    handle, path = tempfile.mkstemp(prefix="tolk-usage-", suffix=".xlsx")
    os.close(handle)
    try:
        await asyncio.to_thread(workbook.save, path)
        with open(path, "rb") as file:  # noqa: ASYNC230 - chunks are read off the loop
            while chunk := await asyncio.to_thread(file.read, 256 * 1024):
                await write(chunk)
    finally:
        os.unlink(path)
    return rows


async def export_usage(
    db: Database,
    usage: UsageFilter,
    fmt: ExportFormat,
    dialect: Dialect,
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
    columns = csv_line_select(dialect) if fmt == "csv" else record_select(fmt)
    sent = 0

    async def counted() -> AsyncIterator[Sequence[Any]]:
        nonlocal sent
        async for batch in usage_batches(db, usage, columns, batch_rows, scalars=fmt == "csv"):
            yield batch
            # Resumed only when the writer asks for more: this batch has been written.
            sent += len(batch)

    complete = False
    try:
        if fmt == "json":
            await _write_json(counted(), write)
        elif fmt == "csv":
            await _write_csv(counted(), write, dialect)
        else:
            await _write_xlsx(counted(), write)
        complete = True
    finally:
        # An export that broke off (a client that went away) is audited with the rows it
        # had been sent: they may have left the building all the same.
        async with db.write() as session:
            session.add(
                ExportAudit(
                    user_id=user_id,
                    at=now,
                    format=f"{fmt}-{dialect}" if fmt == "csv" and dialect else fmt,
                    filters=usage.describe(),
                    rows=sent,
                )
            )
        event = "usage_exported" if complete else "usage_export_aborted"
        log.info(event, user_id=user_id, format=fmt, rows=sent)
    return sent


def _month_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """The starts (in UTC) of every local month from the one of `first` to after `last`."""
    local = first.astimezone(zone)
    year, month = local.year, local.month
    starts: list[datetime] = []
    while True:
        start = datetime(year, month, 1, tzinfo=zone).astimezone(UTC)
        starts.append(start)
        if start > last:
            return starts
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


async def usage_summary(
    session: AsyncSession, usage: UsageFilter, group_by: GroupBy, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Calls, billable seconds and amounts per group and currency, in key order.

    Groups by organisation and interpreter also carry `name` (the newest-sorting name
    the records hold for that id).
    """
    conditions = usage.conditions()
    # Core queries of plain columns go through the connection (sqlmodel's exec is for models).
    conn = await session.connection()
    name: Any = None
    if group_by == "organization":
        key: Any = _T.organization_id
        name = _T.organization
    elif group_by == "interpreter":
        key = _T.interpreter_id
        name = _T.interpreter
    elif group_by == "language":
        key = _T.language
    else:
        bounds = (
            await conn.execute(
                select(func.min(_T.connected_at), func.max(_T.connected_at)).where(*conditions)
            )
        ).one()
        if bounds[0] is None:
            return []
        starts = _month_starts(bounds[0], bounds[1], zone)
        # The local month of each record as a CASE over month starts: SQLite has no time
        # zones, and this way both databases group by the same rule.
        key = case(
            *[
                (_T.connected_at < nxt, start.astimezone(zone).strftime("%Y-%m"))
                for start, nxt in itertools.pairwise(starts)
            ],
            else_=starts[-1].astimezone(zone).strftime("%Y-%m"),
        )
    # Group over a subquery: PostgreSQL does not see a CASE with bound parameters in
    # GROUP BY as the same expression as the one in the select list.
    inner = (
        select(
            key.label("key"),
            _T.currency,
            _T.billable_s,
            _T.amount_cents,
            (name if name is not None else _T.currency).label("name"),
        )
        .where(*conditions)
        .subquery()
    )
    query = (
        select(
            inner.c.key,
            inner.c.currency,
            func.count().label("calls"),
            func.sum(inner.c.billable_s).label("billable_s"),
            func.sum(inner.c.amount_cents).label("amount_cents"),
            func.max(inner.c.name).label("name"),
        )
        .group_by(inner.c.key, inner.c.currency)
        .order_by(inner.c.key, inner.c.currency)
    )
    result = await conn.execute(query)
    groups: list[dict[str, Any]] = []
    for row in result.all():
        group: dict[str, Any] = {
            "key": row.key,
            "calls": int(row.calls),
            "billable_s": int(row.billable_s),
            "amount_cents": int(row.amount_cents),
            "currency": row.currency,
        }
        if name is not None:
            group["name"] = row.name
        groups.append(group)
    return groups
