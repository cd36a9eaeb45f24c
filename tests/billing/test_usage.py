"""Usage records written when a call ends: once per call, with the tariff of its day."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import select

from billing.models import Tariff, UsageRecord
from billing.usage import record_usage
from calls.models import Call
from infra.db import Database

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def add_tariff(db: Database, **values: Any) -> Tariff:
    defaults: dict[str, Any] = {
        "name": "Standard",
        "unit_s": 60,
        "minimum_s": 0,
        "price_per_unit_cents": 150,
        "currency": "EUR",
        "valid_from": date(2025, 1, 1),
        "created_at": START,
    }
    async with db.write() as session:
        tariff = Tariff(**(defaults | values))
        session.add(tariff)
    return tariff


async def records(db: Database) -> list[UsageRecord]:
    async with db.read() as session:
        return list((await session.exec(select(UsageRecord))).all())


async def end(db: Database, call: Call) -> None:
    async with db.write() as session:
        await record_usage(session, call)


class TestRecordUsage:
    async def test_a_connected_call_gets_one_record_with_a_snapshot(self, factory, db):
        """The record holds duration, price and the names as they were at the end."""
        org = await factory.organization("Jobcenter Köln", cost_center="KST-4711")
        counsellor = await factory.user(organization=org)
        interpreter = await factory.interpreter(display_name="Jürgen Weiß")
        tariff = await add_tariff(db, name="Köln 2026", organization_id=org.id)
        call = await factory.call_between(
            counsellor, interpreter, "ar-SY", START, START + timedelta(seconds=61.5)
        )
        await end(db, call)
        [record] = await records(db)
        assert record.call_id == call.id
        assert (record.duration_s, record.billable_s, record.amount_cents) == (61, 120, 300)
        assert record.currency == "EUR"
        assert record.organization == "Jobcenter Köln"
        assert record.cost_center == "KST-4711"
        assert record.interpreter == "Jürgen Weiß"
        assert (record.tariff_id, record.tariff) == (tariff.id, "Köln 2026")
        assert record.language == "ar-SY"
        assert record.end_reason == "hangup"
        assert record.connected_at == START

    async def test_a_call_that_never_connected_is_not_billed(self, factory, db):
        """No record for a call without connected_at."""
        await add_tariff(db)
        call = await factory.call_between(
            await factory.user(), await factory.interpreter(), ended_at=START, end_reason="failed"
        )
        await end(db, call)
        assert await records(db) == []

    async def test_ending_twice_bills_once(self, factory, db):
        """A double end (hangup racing the sweeper) leaves one record with the first price."""
        tariff = await add_tariff(db)
        call = await factory.call_between(
            await factory.user(),
            await factory.interpreter(),
            "uk",
            START,
            START + timedelta(seconds=300),
        )
        await asyncio.gather(end(db, call), end(db, call))
        async with db.write() as session:
            row = await session.get(Tariff, tariff.id)
            row.price_per_unit_cents = 999
            session.add(row)
        await end(db, call)
        [record] = await records(db)
        assert (record.billable_s, record.amount_cents) == (300, 750)

    async def test_a_later_tariff_change_never_touches_an_ended_call(self, factory, db):
        """Editing the tariff after the call leaves its record as billed."""
        tariff = await add_tariff(db, price_per_unit_cents=100)
        call = await factory.call_between(
            await factory.user(), await factory.interpreter(), "uk", START, START + timedelta(0, 90)
        )
        await end(db, call)
        async with db.write() as session:
            row = await session.get(Tariff, tariff.id)
            row.price_per_unit_cents = 500
            session.add(row)
        [record] = await records(db)
        assert (record.billable_s, record.amount_cents) == (120, 200)

    async def test_the_tariff_of_the_calls_local_day_applies(self, factory, db):
        """A call at 00:30 Berlin time on 1 February uses February's tariff."""
        await add_tariff(db, name="Januar", price_per_unit_cents=100, valid_from=date(2026, 1, 1))
        await add_tariff(db, name="Februar", price_per_unit_cents=200, valid_from=date(2026, 2, 1))
        counsellor, interpreter = await factory.user(), await factory.interpreter()
        late_january = datetime(2026, 1, 31, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
        early_february = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # 00:30 in Berlin
        first = await factory.call_between(
            counsellor, interpreter, "uk", late_january, late_january + timedelta(0, 60)
        )
        second = await factory.call_between(
            counsellor, interpreter, "uk", early_february, early_february + timedelta(0, 60)
        )
        await end(db, first)
        await end(db, second)
        billed = {r.call_id: (r.tariff, r.amount_cents) for r in await records(db)}
        assert billed == {first.id: ("Januar", 100), second.id: ("Februar", 200)}

    async def test_a_language_group_tariff_applies_to_its_languages(self, factory, db):
        """Tigrinya is billed under the rare-languages tariff, Ukrainian under the standard."""
        org = await factory.organization()
        await add_tariff(db, name="Standard", organization_id=org.id)
        await add_tariff(
            db, name="Selten", organization_id=org.id, languages="ckb ti", price_per_unit_cents=300
        )
        counsellor, interpreter = await factory.user(organization=org), await factory.interpreter()
        ti = await factory.call_between(
            counsellor, interpreter, "ti", START, START + timedelta(0, 60)
        )
        uk = await factory.call_between(
            counsellor, interpreter, "uk", START + timedelta(1), START + timedelta(1, 60)
        )
        await end(db, ti)
        await end(db, uk)
        billed = {r.call_id: (r.tariff, r.amount_cents) for r in await records(db)}
        assert billed == {ti.id: ("Selten", 300), uk.id: ("Standard", 150)}

    async def test_without_any_tariff_the_call_is_recorded_at_zero(self, factory, db):
        """No tariff: the minutes are still recorded, at 0 in the default currency."""
        call = await factory.call_between(
            await factory.user(), await factory.interpreter(), "uk", START, START + timedelta(0, 75)
        )
        await end(db, call)
        [record] = await records(db)
        assert (record.billable_s, record.amount_cents, record.currency) == (75, 0, "EUR")
        assert (record.tariff_id, record.tariff) == (None, "")


class TestStaffCalls:
    """A call interpreted by a colleague of the in-house pool is a staff call: billed by an
    in-house tariff of its own (often 0) and marked, so that the savings show."""

    async def test_a_staff_call_is_billed_by_the_in_house_tariff_and_marked(self, factory, db):
        """The external tariff bills the external call; the in-house tariff the staff call."""
        from interpreters.models import IN_HOUSE_POOL
        from tests.factories import make_interpreter

        await add_tariff(db, name="Extern", price_per_unit_cents=150)
        await add_tariff(db, name="Im Haus", price_per_unit_cents=10, in_house=True)
        counsellor = await factory.user()
        colleague = await make_interpreter(
            factory, ["ar"], user=await factory.user(), pool_id=IN_HOUSE_POOL
        )
        external = await factory.interpreter()
        ninety = START + timedelta(seconds=90)
        await end(db, await factory.call_between(counsellor, colleague, "ar", START, ninety))
        await end(db, await factory.call_between(counsellor, external, "ar", START, ninety))
        billed = {r.interpreter_id: r for r in await records(db)}
        staff, paid = billed[colleague.id], billed[external.id]
        assert (staff.in_house, staff.tariff, staff.amount_cents) == (True, "Im Haus", 20)
        assert (paid.in_house, paid.tariff, paid.amount_cents) == (False, "Extern", 300)

    async def test_a_staff_call_without_an_in_house_tariff_costs_nothing(self, factory, db):
        """No in-house tariff: the staff call is recorded at 0, never at the external price."""
        from interpreters.models import IN_HOUSE_POOL
        from tests.factories import make_interpreter

        await add_tariff(db, name="Extern", price_per_unit_cents=150)
        colleague = await make_interpreter(
            factory, ["ar"], user=await factory.user(), pool_id=IN_HOUSE_POOL
        )
        call = await factory.call_between(
            await factory.user(), colleague, "ar", START, START + timedelta(minutes=10)
        )
        await end(db, call)
        [record] = await records(db)
        assert (record.in_house, record.amount_cents, record.billable_s) == (True, 0, 600)
