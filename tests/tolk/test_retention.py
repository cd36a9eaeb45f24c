"""Retention: operational data about people goes after its period, usage records after theirs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy import table as sql_table

from accounts.models import Role
from infra.appkeys import INSTANCE_ID
from tolk import retention

DAY = 86400
PERSONAL = ("interpretation_request", "offer", "call", "call_presence", "login_session")


async def counts(factory, *tables: str) -> dict[str, int]:
    found = {}
    async with factory.db.read() as session:
        for table in tables:
            counted = select(func.count()).select_from(sql_table(table))
            found[table] = (await session.exec(counted)).one()[0]
    return found


async def ended_call(client, factory):
    """A call that connected and was hung up through the API: billed, with presence rows."""
    counsellor = await factory.user(Role.COUNSELLOR)
    interpreter = await factory.interpreter()
    call = await factory.call(counsellor, interpreter, state="connected")
    async with factory.db.write() as session:
        await session.exec(
            text(
                "INSERT INTO offer (id, request_id, interpreter_id, state, created_at, expires_at)"
                " VALUES ('o1', :r, :i, 'accepted', :t, :t)"
            ),
            params={"r": call.request_id, "i": interpreter.id, "t": factory.clock.now()},
        )
        await session.exec(
            text(
                "INSERT INTO call_presence (socket_id, call_id, user_id, instance_id, seen_at)"
                " VALUES ('s1', :c, :u, 'x', :t)"
            ),
            params={"c": call.id, "u": counsellor.id, "t": factory.clock.now()},
        )
    factory.clock.advance(300)
    await factory.login(counsellor)
    resp = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
    assert resp.status == 200, await resp.text()
    return call


class TestRetention:
    async def test_operational_data_goes_after_its_period_and_usage_stays(
        self, client, factory, clock, settings
    ):
        """After TOLK_RETENTION_DAYS requests, offers, calls and sessions are gone; the
        usage record stays until TOLK_USAGE_RETENTION_DAYS."""
        call = await ended_call(client, factory)
        before = await counts(factory, *PERSONAL, "usage_record")
        assert all(before[t] >= 1 for t in ("interpretation_request", "offer", "call"))
        assert before["usage_record"] == 1
        db = factory.db

        clock.advance((settings.retention_days - 1) * DAY)
        await retention.purge(db, settings, clock.now())
        assert (await counts(factory, "call", "interpretation_request"))["call"] == 1

        clock.advance(2 * DAY)
        await retention.purge(db, settings, clock.now())
        after = await counts(factory, *PERSONAL, "usage_record")
        assert after == dict.fromkeys(PERSONAL, 0) | {"usage_record": 1}
        async with db.read() as session:
            kept = (
                await session.exec(text("SELECT call_id, counsellor_id FROM usage_record"))
            ).one()
        assert kept[0] == call.id

        clock.advance(settings.usage_retention_days * DAY)
        await retention.purge(db, settings, clock.now())
        assert (await counts(factory, "usage_record"))["usage_record"] == 0

    async def test_bookings_go_after_their_period(self, client, factory, clock, settings):
        """A booking is kept for TOLK_RETENTION_DAYS after its appointment, then deleted."""
        counsellor = await factory.user(Role.COUNSELLOR)
        await factory.interpreter(("uk",))
        await factory.login(counsellor)
        resp = await client.post(
            "/api/bookings",
            json={"language": "uk", "local_start": "2026-11-27T10:00", "duration_min": 60},
            headers=factory.headers(),
        )
        assert resp.status == 201, await resp.text()
        clock.advance((settings.retention_days - 1) * DAY)
        await retention.purge(factory.db, settings, clock.now())
        assert await counts(factory, "booking") == {"booking": 1}
        clock.advance(4 * DAY)
        await retention.purge(factory.db, settings, clock.now())
        assert await counts(factory, "booking") == {"booking": 0}

    async def test_live_data_is_never_touched(self, client, factory, clock, settings):
        """A running call and its request stay however old they are."""
        await factory.call(state="connected")
        clock.advance((settings.retention_days + 5) * DAY)
        await retention.purge(factory.db, settings, clock.now())
        assert await counts(factory, "call", "interpretation_request") == {
            "call": 1,
            "interpretation_request": 1,
        }

    async def test_audit_entries_and_ended_tokens_have_their_own_periods(
        self, client, factory, clock, settings
    ):
        """Security events stay for TOLK_AUDIT_RETENTION_DAYS; ended tokens go with the rest."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        issued = await client.post(
            "/api/admin/tokens",
            json={"user_id": admin.id, "name": "x", "valid_days": 1},
            headers=factory.headers(),
        )
        assert issued.status == 201
        clock.advance((settings.retention_days + 2) * DAY)
        await retention.purge(factory.db, settings, clock.now())
        left = await counts(factory, "api_token", "audit_event")
        assert left["api_token"] == 0
        # The login and the token's issue are still there, and the purge itself is added.
        assert left["audit_event"] == 3
        clock.advance(settings.audit_retention_days * DAY + 1)
        await retention.purge(factory.db, settings, clock.now())
        # Only the record of this last purge remains.
        assert (await counts(factory, "audit_event"))["audit_event"] == 1

    async def test_one_instance_purges_per_period(self, client, factory, clock, settings):
        """The hourly job takes a lease: a second instance in the same hour does nothing."""
        await factory.call(state="ended")
        clock.advance(1000 * DAY)
        await retention.purge_in_turn(factory.db, clock, settings, client.app[INSTANCE_ID])
        assert (await counts(factory, "call"))["call"] == 0
        await factory.call(state="ended")
        clock.advance(1000 * DAY)
        async with factory.db.write() as session:
            await session.exec(
                text("UPDATE lease SET holder = 'another instance', expires_at = :until"),
                params={"until": clock.now() + timedelta(minutes=30)},
            )
        await retention.purge_in_turn(factory.db, clock, settings, client.app[INSTANCE_ID])
        assert (await counts(factory, "call"))["call"] == 1
        clock.advance(timedelta(minutes=30).total_seconds())
        await retention.purge_in_turn(factory.db, clock, settings, client.app[INSTANCE_ID])
        assert (await counts(factory, "call"))["call"] == 0
