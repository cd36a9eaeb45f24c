"""Usage by site: the site filter of exports and summaries, the site column of every export
format (the machine CSV's fast and plain paths alike), and the sums per site."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from openpyxl import load_workbook

from accounts.models import Role
from billing.cells import spreadsheet_text
from billing.export import UsageFilter
from billing.usage import record_usage
from infra.db import Database
from tests.billing.test_export import csv_both_ways
from tests.factories import Factory, make_finance_office

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def seed(factory: Factory, db: Database) -> dict[str, Any]:
    """MigraDo with two sites (a counsellor at each), a Jobcenter counsellor at no site;
    each asks for calls of a minute or more under a per-minute tariff."""
    migrado = await factory.organization("MigraDo", cost_center="50-SOZ")
    jobcenter = await factory.organization("Jobcenter", cost_center="JC")
    centre = await factory.site(migrado, "MigraDo Friedensplatz")
    # A name a spreadsheet would take for a formula, to be written inert.
    infopoint = await factory.site(migrado, "=Infopoint")
    await factory.tariff("Standard", unit_s=60, price_per_unit_cents=100)
    anna = await factory.user(organization=migrado, site=centre)
    kai = await factory.user(organization=migrado, site=infopoint)
    murat = await factory.user(organization=jobcenter)
    layla = await factory.interpreter(display_name="Layla Haddad")
    minutes = [(anna, 3), (kai, 1), (kai, 2), (murat, 5), (anna, 4)]
    for i, (counsellor, length) in enumerate(minutes):
        at = START + timedelta(hours=i)
        call = await factory.call_between(
            counsellor, layla, "ar", at, at + timedelta(minutes=length)
        )
        async with db.write() as session:
            await record_usage(session, call)
    return {"migrado": migrado, "jobcenter": jobcenter, "centre": centre, "infopoint": infopoint}


async def get(client: Any, path: str, **params: str) -> Any:
    resp = await client.get(path, params=params)
    assert resp.status == 200, await resp.text()
    return resp


class TestSiteFilter:
    async def test_every_format_filters_by_site_and_names_it(self, client, factory, db):
        """With `site`, JSON, the machine CSV, the German CSV and the XLSX hold only the
        Infopoint's calls, each naming the site (as text a spreadsheet will not run)."""
        seeded = await seed(factory, db)
        infopoint = seeded["infopoint"].id
        await factory.login(await make_finance_office(factory))

        records = await (await get(client, "/api/usage", site=infopoint)).json()
        assert [(r["site_id"], r["site"], r["duration_s"]) for r in records] == [
            (infopoint, "=Infopoint", 60),
            (infopoint, "=Infopoint", 120),
        ]

        machine = await (await get(client, "/api/usage", site=infopoint, format="csv")).read()
        rows = list(csv.DictReader(io.StringIO(machine.decode(), newline="")))
        assert [(r["site_id"], r["site"]) for r in rows] == [
            (spreadsheet_text(infopoint), "'=Infopoint")
        ] * 2

        excel = await get(client, "/api/usage", site=infopoint, format="csv", dialect="de")
        text = (await excel.read()).decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
        assert [(r["Standort"], r["Standort-ID"]) for r in rows] == [
            ("'=Infopoint", spreadsheet_text(infopoint))
        ] * 2

        book = await get(client, "/api/usage", site=infopoint, format="xlsx", lang="en")
        workbook = load_workbook(io.BytesIO(await book.read()))
        header, *calls = workbook["Calls"].iter_rows(values_only=True)
        site = header.index("Site")
        assert [row[site] for row in calls] == ["'=Infopoint"] * 2
        assert list(workbook["Sites"].iter_rows(values_only=True))[1:] == [
            ("'=Infopoint", 2, 3, 3, "EUR", 0)
        ]

    async def test_the_fast_and_the_plain_machine_csv_are_the_same_bytes(self, factory, db):
        """The database's CSV lines and Python's are byte for byte the same, with a site and
        without one, for everything and for one site."""
        seeded = await seed(factory, db)
        for usage in (UsageFilter(), UsageFilter(site_id=seeded["centre"].id)):
            written = await csv_both_ways(db, usage, factory.clock.now(), batch_rows=2)
            assert written[True] == written[False]
        rows = list(csv.reader(io.StringIO(written[True].decode())))
        assert len(rows) == 3  # the header and Friedensplatz's two calls
        site = rows[0].index("site")
        assert [row[site] for row in rows[1:]] == ["MigraDo Friedensplatz"] * 2

    async def test_a_site_of_an_organisation_not_granted_shows_nothing(self, client, factory, db):
        """The Jobcenter's finance user asking for a MigraDo site gets no records and no
        sums: the site filter never widens what an organisation's finance sees."""
        seeded = await seed(factory, db)
        clerk = await factory.user(Role.FINANCE, organization=seeded["jobcenter"])
        await factory.login(clerk)
        site = seeded["centre"].id
        assert await (await get(client, "/api/usage", site=site)).json() == []
        summary = await get(client, "/api/usage/summary", site=site, group_by="site")
        assert await summary.json() == []
        everything = await (await get(client, "/api/usage")).json()
        assert [(r["site_id"], r["site"]) for r in everything] == [(None, "")]


class TestSumsBySite:
    async def test_sums_per_site_with_no_site_as_one_group(self, client, factory, db):
        """group_by=site: calls, billed seconds and amounts per site, named; the records
        of no site are one group keyed "" ; the organisation filter narrows it."""
        seeded = await seed(factory, db)
        await factory.login(await make_finance_office(factory))
        groups = await (await get(client, "/api/usage/summary", group_by="site")).json()
        found = {
            g["key"]: (g["name"], g["calls"], g["billable_s"], g["amount_cents"]) for g in groups
        }
        assert found == {
            seeded["centre"].id: ("MigraDo Friedensplatz", 2, 420, 700),
            seeded["infopoint"].id: ("=Infopoint", 2, 180, 300),
            "": ("", 1, 300, 500),
        }
        narrowed = await get(
            client, "/api/usage/summary", group_by="site", organization=seeded["migrado"].id
        )
        assert {g["key"] for g in await narrowed.json()} == {
            seeded["centre"].id,
            seeded["infopoint"].id,
        }
        one = await get(client, "/api/usage/summary", site=seeded["infopoint"].id)
        assert [(g["name"], g["calls"]) for g in await one.json()] == [("MigraDo", 2)]
