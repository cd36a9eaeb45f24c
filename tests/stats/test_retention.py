"""Retention keeps the figures: what the purge deletes is summed into monthly summaries
first, and the figures of purged months come from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from accounts.models import Role
from stats import summaries
from tests.factories import History, set_presence
from tests.tolk.test_retention import counts
from tolk import retention

OCTOBER = {"from": "2026-10-01", "to": "2026-11-01"}
T0 = datetime(2026, 10, 6, 7, 0, tzinfo=UTC)  # Tuesday 09:00 in Berlin (CEST)


async def _figures(factory):
    found = {}
    for name, extra in (
        ("languages", {}),
        ("heatmap", {}),
        ("interpreters", {}),
        ("agencies", {"group_by": "agency"}),
    ):
        path = "/api/stats/" + ("interpreters" if name == "agencies" else name)
        resp = await factory.client.get(path, params={**OCTOBER, **extra})
        assert resp.status == 200, await resp.text()
        found[name] = await resp.json()
    return found


class TestSummaries:
    async def test_figures_of_purged_months_come_from_their_summaries(
        self, factory, clock, settings
    ):
        """After the purge the counts, the heat map and the interpreters' hours are what
        they were; percentiles become the upper edge of their wait bucket."""
        clock.set(T0)
        history = await History.make(factory)
        olena = await history.interpreter("Olena", agency="Pool")
        await set_presence(factory, olena, "available")
        for i, wait in enumerate((8, 25, 50, 130)):
            await history.request(
                "uk", T0 + timedelta(minutes=i), accept_after=wait, connect=4, talk=600, by=olena
            )
        await history.request("uk", T0 + timedelta(hours=2), state="expired")
        await history.request("ar", T0 + timedelta(days=1), state="cancelled")
        await history.offer(olena, T0 + timedelta(hours=3), "declined")
        clock.set(T0 + timedelta(hours=5))
        await set_presence(factory, olena, "offline")
        management = await factory.user(Role.MANAGEMENT)
        await factory.login(management)
        before = await _figures(factory)
        assert before["languages"]["approximate"] is False

        clock.set(datetime(2027, 2, 1, tzinfo=UTC))
        done = await retention.purge(factory.db, settings, clock.now())

        assert done["interpretation_request"] == 7
        assert done["presence_interval"] == 1
        left = await counts(factory, "interpretation_request", "offer", "call", "presence_interval")
        assert left == dict.fromkeys(left, 0)
        await factory.login(management)  # the login of October has run out
        after = await _figures(factory)
        assert after["languages"] == before["languages"]
        uk = {r["language"]: r for r in after["languages"]["rows"]}["uk"]
        assert (uk["accept_p50_s"], uk["accept_p90_s"]) == (25, 130)  # of 8, 25, 50, 130 s
        assert after["heatmap"]["rows"] == before["heatmap"]["rows"]
        assert after["interpreters"]["rows"] == before["interpreters"]["rows"]
        assert after["agencies"]["rows"] == before["agencies"]["rows"]
        row = {r["interpreter_id"]: r for r in after["interpreters"]["rows"]}[olena.id]
        assert (row["online_s"], row["talk_s"], row["calls"], row["declined"]) == (
            5 * 3600,
            2400,
            4,
            1,
        )

    async def test_a_second_purge_adds_nothing_twice(self, factory, clock, settings):
        """Summaries hold sums of what was deleted: purging again changes no figure."""
        clock.set(T0)
        history = await History.make(factory)
        await history.request("uk", T0, accept_after=12)
        clock.set(datetime(2027, 2, 1, tzinfo=UTC))
        await retention.purge(factory.db, settings, clock.now())
        await factory.login(await factory.user(Role.MANAGEMENT))
        once = await _figures(factory)
        await retention.purge(factory.db, settings, clock.now())
        assert await _figures(factory) == once
        assert once["languages"]["rows"][0]["requests"] == 1


class TestSealedMonths:
    async def test_a_sealed_month_reads_the_same_from_its_summary(self, factory, clock, settings):
        """Once October is sealed the figures of October come from its summary, the same
        as from the rows; a period that cuts October still reads October's rows."""
        clock.set(T0)
        history = await History.make(factory)
        olena = await history.interpreter("Olena", agency="Pool")
        await set_presence(factory, olena, "available")
        await history.request("uk", T0, accept_after=12, connect=3, talk=900, by=olena)
        await history.request("ar", T0 + timedelta(days=20), state="expired")
        await history.offer(olena, T0 + timedelta(hours=1), "expired")
        clock.set(T0 + timedelta(hours=8))
        await set_presence(factory, olena, "offline")
        management = await factory.user(Role.MANAGEMENT)
        await factory.login(management)
        before = await _figures(factory)

        clock.set(datetime(2026, 11, 3, tzinfo=UTC))
        sealed = await summaries.seal_months(factory.db, clock.now(), ZoneInfo("Europe/Berlin"))
        assert sealed == ["2026-10"]
        assert await summaries.seal_months(factory.db, clock.now(), ZoneInfo("Europe/Berlin")) == []
        await factory.login(management)
        async with factory.db.write() as session:
            # Rows of a sealed month are no longer read: changing one changes no figure.
            await session.exec(text("UPDATE interpretation_request SET language = 'ti'"))
        assert await _figures(factory) == before

        cut = await factory.client.get(
            "/api/stats/languages", params={"from": "2026-10-02", "to": "2026-11-01"}
        )
        assert {r["language"] for r in (await cut.json())["rows"]} == {"ti"}
