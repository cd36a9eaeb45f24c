"""Staff calls (interpreted by colleagues in the house) in the exports and summaries:
marked in every format and counted apart, so that what they saved shows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.export import UsageFilter
from billing.usage import record_usage
from infra.db import Database
from interpreters.models import IN_HOUSE_POOL
from tests.billing.test_export import csv_both_ways, fetch, finance
from tests.factories import Factory, make_interpreter

NINE = datetime(2026, 2, 3, 8, 0, tzinfo=UTC)


async def seed_staff_and_external(factory: Factory, db: Database) -> dict[str, Any]:
    """One organisation's morning: a ten-minute staff call (no in-house tariff: free) and
    a five-minute external call at the standard tariff."""
    org = await factory.organization("Stadt Dortmund")
    await factory.tariff("Standard", unit_s=60, price_per_unit_cents=150)
    anna = await factory.user(organization=org)
    nour = await make_interpreter(
        factory, ["ar"], user=await factory.user(organization=org), pool_id=IN_HOUSE_POOL
    )
    olga = await factory.interpreter(display_name="Olga Petrenko")
    staff = await factory.call_between(anna, nour, "ar", NINE, NINE + timedelta(minutes=10))
    later = NINE + timedelta(minutes=20)
    external = await factory.call_between(anna, olga, "ar", later, later + timedelta(minutes=5))
    for call in (staff, external):
        async with db.write() as session:
            await record_usage(session, call)
    return {"org": org, "staff": staff.id, "external": external.id}


async def test_json_and_machine_csv_mark_the_staff_call(client, factory, db):
    """JSON says `in_house`; the machine CSV's last column says `true`/`false`, the same
    bytes whether the database or Python writes the lines."""
    seeded = await seed_staff_and_external(factory, db)
    await finance(factory)
    records = await (await fetch(client)).json()
    assert [(r["call_id"], r["in_house"], r["amount_cents"]) for r in records] == [
        (seeded["staff"], True, 0),
        (seeded["external"], False, 750),
    ]
    written = await csv_both_ways(db, UsageFilter(), factory.clock.now())
    assert written[True] == written[False]
    rows = list(csv.DictReader(io.StringIO(written[True].decode(), newline="")))
    assert list(rows[0])[-1] == "in_house"
    assert [r["in_house"] for r in rows] == ["true", "false"]


async def test_german_csv_says_im_haus(client, factory, db):
    """The table for people has `Im Haus` with `ja` for the staff call."""
    await seed_staff_and_external(factory, db)
    await finance(factory)
    body = (await (await fetch(client, format="csv", dialect="de")).read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body, newline=""), delimiter=";"))
    assert [(r["Im Haus"], r["Betrag"]) for r in rows] == [("ja", "0,00"), ("", "7,50")]


async def test_summary_counts_staff_calls_apart_and_not_as_untariffed(client, factory, db):
    """The organisation's totals count the staff call and its minutes apart; a staff call
    without an in-house tariff is free by design, not a missing tariff."""
    seeded = await seed_staff_and_external(factory, db)
    await finance(factory)
    resp = await client.get("/api/usage/summary", params={"group_by": "organization"})
    [group] = [g for g in await resp.json() if g["key"] == seeded["org"].id]
    assert (group["calls"], group["amount_cents"], group["untariffed_calls"]) == (2, 750, 0)
    assert (group["in_house_calls"], group["in_house_billable_s"]) == (1, 600)
