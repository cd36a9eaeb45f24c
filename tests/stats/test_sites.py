"""The figures of one site: requests, waits, calls and offers of the counsellors who asked
there, from rows and, once the month is sealed, from its summaries alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from accounts.models import Role
from stats import summaries
from tests.factories import History, set_presence

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)  # a Monday in October
OCTOBER = {"from": "2026-10-01", "to": "2026-11-01"}


async def figures(factory, site: str | None) -> dict[str, dict]:
    """Languages and interpreters of October, for one site or all."""
    found = {}
    params = {**OCTOBER, **({"site": site} if site else {})}
    for name in ("languages", "interpreters"):
        resp = await factory.client.get(f"/api/stats/{name}", params=params)
        assert resp.status == 200, await resp.text()
        found[name] = {
            row.get("language") or row["name"]: row for row in (await resp.json())["rows"]
        }
    return found


class TestStatsBySite:
    async def test_a_site_shows_its_own_requests_before_and_after_sealing(self, factory, clock):
        """Friedensplatz asked for Ukrainian twice and the Infopoint for Arabic once: each
        site's figures hold only its requests, calls and offers (online time stays the
        interpreter's); sealing October changes none of them."""
        clock.set(T0)
        history = await History.make(factory)
        centre = await factory.site(history.org, "Friedensplatz")
        infopoint = await factory.site(history.org, "Infopoint")
        anna = await factory.user(Role.COUNSELLOR, organization=history.org, site=centre)
        kai = await factory.user(Role.COUNSELLOR, organization=history.org, site=infopoint)
        olena = await history.interpreter("Olena", languages=["uk", "ar"])
        await set_presence(factory, olena, "available")
        for hours, language, who, talk in (
            (0, "uk", anna, 600),
            (1, "uk", anna, 300),
            (2, "ar", kai, 120),
        ):
            await history.request(
                language,
                T0 + timedelta(hours=hours),
                accept_after=10,
                connect=2,
                talk=talk,
                by=olena,
                counsellor=who,
            )
        await history.request("ar", T0 + timedelta(hours=3), state="expired", counsellor=kai)
        clock.set(T0 + timedelta(hours=8))
        await set_presence(factory, olena, "offline")
        management = await factory.user(Role.MANAGEMENT)
        await factory.login(management)

        at_centre = await figures(factory, centre.id)
        at_infopoint = await figures(factory, infopoint.id)
        assert {k: v["requests"] for k, v in at_centre["languages"].items()} == {"uk": 2}
        assert {k: (v["requests"], v["expired"]) for k, v in at_infopoint["languages"].items()} == {
            "ar": (2, 1)
        }
        assert (
            at_centre["interpreters"]["Olena"]["calls"],
            at_centre["interpreters"]["Olena"]["talk_s"],
        ) == (2, 900)
        assert at_infopoint["interpreters"]["Olena"]["calls"] == 1
        assert at_infopoint["interpreters"]["Olena"]["online_s"] == 8 * 3600
        everything = await figures(factory, None)
        assert everything["languages"]["uk"]["requests"] == 2

        clock.set(datetime(2026, 11, 3, tzinfo=UTC))
        assert await summaries.seal_months(factory.db, clock.now(), ZoneInfo("Europe/Berlin")) == [
            "2026-10"
        ]
        await factory.login(management)
        assert await figures(factory, centre.id) == at_centre
        assert await figures(factory, infopoint.id) == at_infopoint
        assert await figures(factory, None) == everything

    async def test_management_sees_the_sites_to_filter_by(self, factory):
        """Management lists every site with its organisation, deactivated ones too (they
        have figures); a counsellor may not."""
        org = await factory.organization()
        open_site = await factory.site(org, "Friedensplatz")
        closed = await factory.site(org, "Alte Wache")
        async with factory.db.write() as session:
            row = await session.get(type(closed), closed.id)
            row.active = False
        await factory.login(await factory.user(Role.MANAGEMENT))
        resp = await factory.client.get("/api/stats/sites")
        assert resp.status == 200, await resp.text()
        found = {
            s["name"]: (s["organization_id"], s["active"]) for s in (await resp.json())["sites"]
        }
        assert found == {"Friedensplatz": (org.id, True), "Alte Wache": (org.id, False)}
        assert open_site.id in {s["id"] for s in (await resp.json())["sites"]}
        await factory.login(await factory.user(Role.COUNSELLOR))
        assert (await factory.client.get("/api/stats/sites")).status == 403
