"""A consultation's interpreter segments in every export and in the statement: together, in
time order, under one consultation reference."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from billing.cells import spreadsheet_text
from billing.export import UsageFilter
from billing.rules import call_reference, consultation_reference
from billing.usage import record_usage
from infra.db import Database
from tests.billing.test_export import csv_both_ways, fetch, finance
from tests.factories import Factory

ROOM = "-Rm7" + "q" * 18
"""A room id starting with `-`, as a generated id may: spreadsheets get it inert."""
NINE = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)  # 09:00 in Berlin


async def seed_consultation(factory: Factory, db: Database) -> dict[str, Any]:
    """One organisation's morning: a plain call, a consultation with a hand-over from
    Jürgen to Olga, a plain call that connected between the two segments, and one after."""
    org = await factory.organization("Jobcenter Köln", cost_center="KST-4711")
    await factory.tariff("Standard", unit_s=60, price_per_unit_cents=100)
    anna = await factory.user(organization=org)
    juergen = await factory.interpreter(display_name="Jürgen Weiß")
    olga = await factory.interpreter(display_name="Olga Petrenko")
    aisha = await factory.interpreter(display_name="Aisha Haddad")

    def at(minutes: int) -> datetime:
        return NINE + timedelta(minutes=minutes)

    calls = {
        "before": await factory.call_between(anna, aisha, "ar", at(0), at(5)),
        "first": await factory.segment_between(
            anna, juergen, ROOM, at(5), at(15), "handover", "ar-SY"
        ),
        "between": await factory.call_between(anna, aisha, "ar", at(10), at(12)),
        "second": await factory.segment_between(anna, olga, ROOM, at(14), at(30), "hangup", "ar"),
        "after": await factory.call_between(anna, aisha, "uk", at(40), at(41)),
    }
    for call in calls.values():
        async with db.write() as session:
            await record_usage(session, call)
    return {"org": org, **{name: call.id for name, call in calls.items()}}


ORDER = ["before", "first", "second", "between", "after"]
"""A consultation sits where its first segment connected, its segments in time order;
plain calls keep their order around it."""


def inert_ids(seeded: dict[str, Any]) -> list[str]:
    """The call ids in ORDER as spreadsheets get them (a generated id may start with `-`)."""
    return [spreadsheet_text(seeded[name]) for name in ORDER]


def rows_of(text: str, delimiter: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


class TestConsultationExports:
    async def test_json_lists_the_segments_together_with_one_reference(self, client, factory, db):
        """JSON: the two segments next to each other, same room and reference; ordinary
        calls have none."""
        seeded = await seed_consultation(factory, db)
        await finance(factory)
        records = await (await fetch(client)).json()
        assert [r["call_id"] for r in records] == [seeded[name] for name in ORDER]
        ref = consultation_reference(ROOM)
        assert [(r["room_id"], r["consultation_ref"]) for r in records] == [
            (None, ""),
            (ROOM, ref),
            (ROOM, ref),
            (None, ""),
            (None, ""),
        ]
        assert ref == call_reference(ROOM)
        assert ref != call_reference(seeded["first"])

    async def test_machine_csv_fast_and_plain_paths_write_the_same_bytes(self, client, factory, db):
        """The CSV's `room_id` column (inert where it starts with `-`), the same order and
        bytes whether the database or Python builds the lines."""
        seeded = await seed_consultation(factory, db)
        await finance(factory)
        # Batches of two: a consultation's segments fall into different batches.
        written = await csv_both_ways(db, UsageFilter(), factory.clock.now(), batch_rows=2)
        assert written[True] == written[False]
        rows = rows_of(written[True].decode(), ",")
        assert [r["call_id"] for r in rows] == inert_ids(seeded)
        assert [r["room_id"] for r in rows] == ["", "'" + ROOM, "'" + ROOM, "", ""]
        assert list(rows[0])[-4:] == ["room_id", "site_id", "site", "in_house"]

    async def test_german_csv_shows_the_consultation_beside_the_call(self, client, factory, db):
        """German CSV: `Beratung` holds the consultation's reference on both segments, next
        to each other; `Beratungs-ID` its id; empty for ordinary calls."""
        seeded = await seed_consultation(factory, db)
        await finance(factory)
        body = await (await fetch(client, format="csv", dialect="de")).read()
        rows = rows_of(body.decode("utf-8-sig"), ";")
        assert list(rows[0])[:2] == ["Gespräch", "Beratung"]
        assert [r["Gesprächs-ID"] for r in rows] == inert_ids(seeded)
        ref = consultation_reference(ROOM)
        assert [r["Beratung"] for r in rows] == ["", ref, ref, "", ""]
        assert [r["Beratungs-ID"] for r in rows] == ["", "'" + ROOM, "'" + ROOM, "", ""]
        assert [r["Beginn"] for r in rows[1:3]] == ["03.02.2026 09:05:00", "03.02.2026 09:14:00"]
        assert [r["Ende des Gesprächs"] for r in rows[1:3]] == ["übergeben", "aufgelegt"]

    async def test_xlsx_shows_the_consultation_beside_the_call(self, client, factory, db):
        """XLSX (English): a `Consultation` column, the segments in adjacent rows."""
        seeded = await seed_consultation(factory, db)
        await finance(factory)
        workbook = load_workbook(
            io.BytesIO(await (await fetch(client, format="xlsx", lang="en")).read())
        )
        header, *rows = list(workbook["Calls"].iter_rows(values_only=True))
        read = [dict(zip(header, row, strict=True)) for row in rows]
        assert [r["Call ID"] for r in read] == inert_ids(seeded)
        ref = consultation_reference(ROOM)
        # openpyxl reads an empty string cell back as None.
        assert [r["Consultation"] for r in read] == [None, ref, ref, None, None]
        assert read[1]["Consultation ID"] == "'" + ROOM
        assert [r["Interpreter"] for r in read[1:3]] == ["Jürgen Weiß", "Olga Petrenko"]


class TestConsultationStatement:
    async def test_the_statement_groups_a_consultations_segments_with_its_total(
        self, client, factory, db
    ):
        """The month's statement lists the consultation once, its two segments in time
        order and its total; the segments count among the lines' calls too."""
        seeded = await seed_consultation(factory, db)
        await finance(factory)
        resp = await client.get(
            "/api/usage/statement",
            params={"organization": seeded["org"].id, "month": "2026-02"},
        )
        assert resp.status == 200, await resp.text()
        found = (await resp.json())["statement"]
        assert found["totals"][0]["calls"] == 5
        [consultation] = found["consultations"]
        assert consultation["room_id"] == ROOM
        assert consultation["consultation_ref"] == consultation_reference(ROOM)
        segments = consultation["segments"]
        assert [
            (s["call_ref"], s["interpreter"], s["language"], s["end_reason"]) for s in segments
        ] == [
            (call_reference(seeded["first"]), "Jürgen Weiß", "ar-SY", "handover"),
            (call_reference(seeded["second"]), "Olga Petrenko", "ar", "hangup"),
        ]
        assert [s["connected_at"] for s in segments] == [
            "2026-02-03T08:05:00.000Z",
            "2026-02-03T08:14:00.000Z",
        ]
        assert consultation["totals"] == [
            {"currency": "EUR", "segments": 2, "billable_s": 1560, "amount_cents": 2600}
        ]
