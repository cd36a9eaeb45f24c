"""Text built by the database: RFC 3339 times for the JSON export, and the fast path of
the machine CSV, where each line comes out of the database ready to send.

A line built here is byte for byte what billing.tables.machine_line builds in Python
(tests/billing/test_export.py holds the two equal on both databases); the SQL path exists
because it is faster on large exports (bench/results/export_usage.md). Quoting and the
formula guard are billing.cells' rules, rendered as SQL there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, LargeBinary, String, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from billing.cells import guard_sql, quoted_sql
from billing.models import UsageRecord

_T = UsageRecord.__table__.c  # type: ignore[attr-defined]


class rfc3339(FunctionElement[str]):
    """A UTC timestamp column as RFC 3339 text with milliseconds and `Z`, as jsonio writes it."""

    type = String()
    name = "rfc3339"
    inherit_cache = True  # no state beyond its one clause


def _rfc3339_sql(value: str, dialect: str) -> str:
    if dialect == "sqlite":
        # UTCDateTime stores SQLite times as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC).
        return f"(substr({value}, 1, 10) || 'T' || substr({value}, 12, 12) || 'Z')"
    return f"""to_char(({value}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


@compiles(rfc3339, "sqlite")
@compiles(rfc3339, "postgresql")
def _rfc3339(element: rfc3339, compiler: SQLCompiler, **kw: Any) -> str:
    return _rfc3339_sql(compiler.process(element.clauses, **kw), compiler.dialect.name)


CsvKind = Literal["id", "optional_id", "text", "time", "int", "amount", "flag"]


class csv_line(FunctionElement[bytes]):
    """A whole CSV line of a usage record with its CRLF, as UTF-8 bytes, built by the
    database in one expression.

    Each column has a kind: `id` (never needs quoting: generated ids, tags, codes),
    `optional_id` (an `id` that may be null, an empty cell then: on PostgreSQL a null
    would make the whole concatenated line null), `text` (quoted as
    billing.cells.csv_field quotes), `time` (RFC 3339 like `rfc3339`),
    `int`, and `amount` (cents with a decimal point). `id` and `text` cells get the
    prefix of billing.cells.spreadsheet_text (a generated id may start with `-`). Rows
    arrive as one ready `bytes` each, never decoded and encoded again.
    """

    type = LargeBinary()
    name = "csv_line"
    # The kinds shape the SQL text but are not clauses: never cache it.
    inherit_cache = False

    def __init__(self, columns: Sequence[tuple[ColumnElement[Any], CsvKind]]) -> None:
        self.kinds = tuple(kind for _, kind in columns)
        super().__init__(*(column for column, _ in columns))


def _cell_sql(value: str, kind: CsvKind, dialect: str) -> tuple[str, list[str]]:
    """A cell as a printf format and its arguments (SQLite), or as one SQL text (the
    format `%s`, PostgreSQL)."""
    sqlite = dialect == "sqlite"
    if kind == "time":
        # 'YYYY-MM-DD HH:MM:SS.ffffff' -> 'YYYY-MM-DDTHH:MM:SS.fff' + 'Z'
        return (
            ("%.23sZ", [f"replace({value}, ' ', 'T')"])
            if sqlite
            else (
                "%s",
                [_rfc3339_sql(value, dialect)],
            )
        )
    if kind == "int":
        return ("%d", [value]) if sqlite else ("%s", [f"({value})::text"])
    if kind == "flag":
        # As billing.tables.flag_text: SQLite holds 0/1, PostgreSQL a boolean.
        return "%s", [f"CASE WHEN {value} THEN 'true' ELSE 'false' END"]
    if kind == "amount":
        if sqlite:  # amounts are never negative: integer division is the floor
            return "%d.%02d", [f"({value}) / 100", f"({value}) % 100"]
        return "%s", [f"(({value}) / 100)::text || '.' || lpad((({value}) % 100)::text, 2, '0')"]
    inert = guard_sql(value, dialect)
    if kind == "optional_id":
        # Most records have none: settle them before the guard's tests.
        return "%s", [f"CASE WHEN {value} IS NULL THEN '' ELSE {inert} END"]
    return "%s", [quoted_sql(value, inert, ",", dialect) if kind == "text" else inert]


@compiles(csv_line, "sqlite")
@compiles(csv_line, "postgresql")
def _csv_line(element: csv_line, compiler: SQLCompiler, **kw: Any) -> str:
    dialect = compiler.dialect.name
    cells = [
        _cell_sql(compiler.process(column, **kw), kind, dialect)
        for column, kind in zip(element.clauses, element.kinds, strict=True)
    ]
    if dialect == "sqlite":
        # One printf: concatenating with || would copy the growing line once per column.
        # The CRLF is part of the format; a BLOB comes to Python as bytes, left undecoded.
        line = ",".join(fmt for fmt, _ in cells) + "\r\n"
        args = ", ".join(arg for _, found in cells for arg in found)
        return f"CAST(printf('{line}', {args}) AS BLOB)"
    joined = " || ',' || ".join(f"({found[0]})" for _, found in cells)
    # bytea comes to Python as bytes, left undecoded.
    return f"convert_to({joined} || chr(13) || chr(10), 'UTF8')"


_KINDS: dict[str, CsvKind] = {
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
    "room_id": "optional_id",
    "site_id": "optional_id",
    "site": "text",
    "in_house": "flag",
}
"""Columns that are not `id`-like; the others are generated ids, tags, codes and reasons."""


def machine_line_select(columns: Sequence[str]) -> Any:
    """One column: the machine CSV line of each record (UTF-8 bytes with its CRLF)."""
    cells = [
        (_T.amount_cents if name == "amount" else getattr(_T, name), _KINDS.get(name, "id"))
        for name in columns
    ]
    return select(csv_line(cells).label("line"))
