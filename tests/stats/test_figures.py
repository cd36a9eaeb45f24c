"""Each figure computed from known requests, offers, calls and online time, on SQLite and on
PostgreSQL, through `GET /api/stats/...` as management reads them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from accounts.models import Role
from tests.factories import History, set_presence


async def _get(factory, path, **params):
    resp = await factory.client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def _by(rows, key):
    return {row[key]: row for row in rows}


T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin (CET)
PERIOD = {"from": "2026-11-01", "to": "2026-12-01"}


class TestLanguages:
    async def test_waits_answer_rates_and_unanswered_per_language(self, factory, clock):
        """Median and 90th percentile are nearest-rank waits; answered within 30 s / 2 min /
        5 min, expired, cancelled and waiting are counted per language and period."""
        clock.set(T0 + timedelta(hours=6))
        history = await History.make(factory)
        for i, wait in enumerate((10, 20, 40, 100, 400)):
            await history.request("uk", T0 + timedelta(hours=i), accept_after=wait, connect=3)
        await history.request("uk", T0, state="expired")
        await history.request("uk", T0, state="cancelled")
        await history.request("uk", T0, state="queued")
        await history.request("ar", T0, accept_after=5, connect=2)
        await history.request("ar", T0, accept_after=7)  # accepted, never connected
        await history.request("ar", T0 - timedelta(days=10), accept_after=1)  # before `from`
        await history.request("ar", T0, accept_after=1, organization=history.other_org)
        await factory.login(await factory.user(Role.MANAGEMENT))

        body = await _get(factory, "/api/stats/languages", organization=history.org.id, **PERIOD)

        rows = _by(body["rows"], "language")
        assert body["approximate"] is False
        uk = rows["uk"]
        assert (uk["requests"], uk["answered"], uk["waiting"]) == (8, 5, 1)
        assert (uk["within_30s"], uk["within_2min"], uk["within_5min"]) == (2, 4, 4)
        assert (uk["expired"], uk["cancelled"], uk["failed"]) == (1, 1, 0)
        assert (uk["accept_p50_s"], uk["accept_p90_s"]) == (40, 400)
        assert (uk["connect_p50_s"], uk["connect_p90_s"]) == (43, 403)
        ar = rows["ar"]
        assert (ar["requests"], ar["answered"]) == (2, 2)
        assert (ar["accept_p50_s"], ar["accept_p90_s"]) == (5, 7)
        assert (ar["connect_p50_s"], ar["connect_p90_s"]) == (7, 7)

    async def test_every_organisation_without_the_filter(self, factory):
        """Without an organisation, every organisation's requests count."""
        history = await History.make(factory)
        await history.request("ar", T0, accept_after=5)
        await history.request("ar", T0, accept_after=9, organization=history.other_org)
        await factory.login(await factory.user(Role.ADMIN))

        body = await _get(factory, "/api/stats/languages", **PERIOD)

        assert _by(body["rows"], "language")["ar"]["requests"] == 2

    async def test_waits_are_whole_seconds_rounded_up(self, factory):
        """A wait of 30.2 s counts as 31 s: not within 30 s; 30.0 s is."""
        history = await History.make(factory)
        await history.request("uk", T0, accept_after=30.2)
        await history.request("uk", T0, accept_after=30.0)
        await history.request("uk", T0, accept_after=29.0)
        await factory.login(await factory.user(Role.MANAGEMENT))

        uk = (await _get(factory, "/api/stats/languages", **PERIOD))["rows"][0]

        assert (uk["within_30s"], uk["accept_p50_s"], uk["accept_p90_s"]) == (2, 30, 31)

    async def test_csv_in_the_german_dialect(self, factory):
        """CSV: the header, semicolons and the byte order mark."""
        history = await History.make(factory)
        await history.request("uk", T0, accept_after=12.5)
        await factory.login(await factory.user(Role.MANAGEMENT))

        resp = await factory.client.get(
            "/api/stats/languages", params={**PERIOD, "format": "csv", "dialect": "de"}
        )

        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/csv")
        raw = await resp.read()
        assert raw.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
        assert lines[0][:3] == ["language", "requests", "answered"]
        assert lines[1][0] == "uk"
        assert lines[1][lines[0].index("accept_p50_s")] == "13"


class TestHeatMap:
    async def test_demand_and_unanswered_by_local_weekday_and_hour(self, factory):
        """Hours are local (Europe/Berlin), across a change of daylight saving time too."""
        history = await History.make(factory)
        monday_9 = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)  # CET: 09:30
        tuesday_14 = datetime(2026, 10, 20, 12, 10, tzinfo=UTC)  # CEST: 14:10
        await history.request("uk", monday_9, accept_after=5)
        await history.request("uk", monday_9 + timedelta(minutes=10), state="expired")
        await history.request("fa", tuesday_14, state="cancelled")
        await factory.login(await factory.user(Role.MANAGEMENT))

        autumn = {"from": "2026-10-01", "to": "2026-12-01"}
        body = await _get(factory, "/api/stats/heatmap", **autumn)

        cells = {(c["weekday"], c["hour"]): c for c in body["rows"]}
        assert len(cells) == 168
        assert (cells[(0, 9)]["requests"], cells[(0, 9)]["unanswered"]) == (2, 1)
        assert (cells[(1, 14)]["requests"], cells[(1, 14)]["unanswered"]) == (1, 1)
        assert sum(c["requests"] for c in body["rows"]) == 3


class TestInterpreters:
    async def test_online_hours_talk_utilisation_and_offers(self, factory, clock):
        """Online time comes from status changes (pause counts as online); talk time from
        calls; utilisation is talk over online; offers declined and let ring out count."""
        history = await History.make(factory)
        olena = await history.interpreter("Olena", agency="Dolmetschpool")
        clock.set(T0)
        await set_presence(factory, olena, "available")
        clock.set(T0 + timedelta(hours=1))
        await set_presence(factory, olena, "away")  # a pause is still online
        clock.set(T0 + timedelta(hours=2))
        await set_presence(factory, olena, "offline")
        await history.request(
            "uk", T0 + timedelta(minutes=5), accept_after=10, connect=5, talk=1800, by=olena
        )
        await history.offer(olena, T0 + timedelta(minutes=30), "declined")
        await history.offer(olena, T0 + timedelta(minutes=40), "expired")
        await factory.login(await factory.user(Role.MANAGEMENT))

        body = await _get(factory, "/api/stats/interpreters", **PERIOD)

        row = _by(body["rows"], "interpreter_id")[olena.id]
        assert (row["name"], row["agency"]) == ("Olena", "Dolmetschpool")
        assert (row["online_s"], row["talk_s"], row["utilisation"]) == (7200, 1800, 0.25)
        assert (row["calls"], row["offers"], row["declined"], row["rang_out"]) == (1, 3, 1, 1)

        agencies = await _get(factory, "/api/stats/interpreters", group_by="agency", **PERIOD)
        pool = _by(agencies["rows"], "agency")["Dolmetschpool"]
        assert (pool["interpreters"], pool["online_s"], pool["talk_s"]) == (1, 7200, 1800)

    async def test_online_time_is_cut_to_the_period(self, factory, clock):
        """An interval that started before the period counts from the period's start."""
        history = await History.make(factory)
        omar = await history.interpreter("Omar")
        clock.set(datetime(2026, 10, 31, 22, 0, tzinfo=UTC))  # 23:00 in Berlin, 31 October
        await set_presence(factory, omar, "available")
        clock.set(datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
        await set_presence(factory, omar, "offline")
        await factory.login(await factory.user(Role.MANAGEMENT))

        body = await _get(factory, "/api/stats/interpreters", **PERIOD)

        assert _by(body["rows"], "interpreter_id")[omar.id]["online_s"] == 7200

    async def test_a_spreadsheet_formula_in_a_name_is_neutralised(self, factory):
        """A name that a spreadsheet would run as a formula reaches the CSV as text."""
        history = await History.make(factory)
        mallory = await history.interpreter("=HYPERLINK(1)")
        await history.offer(mallory, T0, "declined")
        await factory.login(await factory.user(Role.MANAGEMENT))

        resp = await factory.client.get(
            "/api/stats/interpreters", params={**PERIOD, "format": "csv"}
        )

        lines = list(csv.reader(io.StringIO((await resp.read()).decode())))
        assert lines[1][lines[0].index("name")] == "'=HYPERLINK(1)"


class TestLive:
    async def test_waiting_calls_live_and_available_interpreters(self, factory, clock):
        """Requests waiting now with the longest wait, live calls, interpreters available."""
        history = await History.make(factory)
        clock.set(T0)
        await history.request("uk", T0 - timedelta(seconds=90), state="queued")
        await history.request("uk", T0 - timedelta(seconds=20), state="offering")
        # Connected a second ago: the lost-call sweeper leaves it alone.
        await history.request("ar", T0 - timedelta(seconds=5), accept_after=3, connect=1, talk=None)
        olena = await history.interpreter("Olena", languages=["uk"])
        await set_presence(factory, olena, "available")
        await factory.login(await factory.user(Role.MANAGEMENT))

        body = await _get(factory, "/api/stats/live")

        assert body["calls_live"] == 1
        uk = _by(body["languages"], "language")["uk"]
        assert (uk["waiting"], uk["longest_wait_s"], uk["available"]) == (2, 90, 1)


class TestAccess:
    async def test_only_management_and_admins_read_the_figures(self, factory):
        """Counsellors, interpreters and finance get 403."""
        for role in (Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE):
            client = await factory.new_client()
            await factory.login(await factory.user(role), client)
            resp = await client.get("/api/stats/languages")
            assert resp.status == 403
            await client.close()

    async def test_a_period_longer_than_400_days_is_refused(self, factory):
        """A period over 400 days is 422 `period_too_long`."""
        await factory.login(await factory.user(Role.MANAGEMENT))
        resp = await factory.client.get(
            "/api/stats/languages", params={"from": "2025-01-01", "to": "2026-12-01"}
        )
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["code"] == "period_too_long"


class TestOrganizations:
    async def test_management_sees_the_organisations_to_filter_by(self, factory):
        """The filter's choices: every organisation's id and name, nothing more."""
        org = await factory.organization("Jobcenter Dortmund")
        await factory.login(await factory.user(Role.MANAGEMENT, organization=org))
        body = await _get(factory, "/api/stats/organizations")
        assert {"id": org.id, "name": "Jobcenter Dortmund"} in body["organizations"]
        assert all(set(o) == {"id", "name"} for o in body["organizations"])
