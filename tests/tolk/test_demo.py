"""`tolk seed-demo`: the demo roster, made through the roster code, idempotently."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from accounts.models import User
from billing.models import Tariff
from dispatch.models import InterpretationRequest
from interpreters import service as roster
from tolk.demo import DEMO_PASSWORD, INTERPRETERS, STAFF, seed_demo

DEMO_LANGUAGES = {
    "uk",
    "ru",
    "ar",
    "fa-AF",
    "fa",
    "tr",
    "kmr",
    "ckb",
    "ti",
    "ro",
    "bg",
    "pl",
    "en",
    "fr",
    "ps",
}


class TestSeedDemo:
    async def test_the_demo_has_a_claimed_and_an_open_booking(self, client, db, clock):
        """Layla has claimed the Jobcenter's Arabic appointment of tomorrow; the Sozialamt's
        Dari appointment is open, and Farid sees it among his open bookings; seeding again
        adds none."""
        await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        await client.post("/api/session", json={"username": "layla", "password": DEMO_PASSWORD})
        mine = (await (await client.get("/api/bookings")).json())["bookings"]
        assert [(b["language"], b["state"], b["local_start"][11:]) for b in mine] == [
            ("ar", "claimed", "10:00")
        ]
        await client.post("/api/session", json={"username": "farid", "password": DEMO_PASSWORD})
        open_ = (await (await client.get("/api/bookings/open")).json())["bookings"]
        assert [(b["language"], b["state"]) for b in open_] == [("fa-AF", "open")]

    async def test_seed_twice_gives_one_roster(self, db, clock):
        """Seeding twice leaves one set of users and covers the demo languages."""
        first = await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        async with db.read() as session:
            users = (await session.exec(select(func.count()).select_from(User))).one()
            counts = await roster.language_counts(session)
            profiles = await roster.list_profiles(session)
        # and the terminal in the foyer
        assert users == len(STAFF) + len(INTERPRETERS) + 1 == len(first)
        assert len(profiles) >= 12
        assert set(counts) >= DEMO_LANGUAGES

    async def test_demo_login_works(self, client, db, clock):
        """A printed demo login logs in and /api/me tells the organisation."""
        logins = await seed_demo(db, clock.now())
        login = next(x for x in logins if x.username == "berater.jobcenter")
        resp = await client.post(
            "/api/session", json={"username": login.username, "password": login.password}
        )
        assert resp.status == 200
        me = await (await client.get("/api/me")).json()
        assert me["user"]["organization"]["name"] == "Jobcenter Dortmund"
        assert me["user"]["role"] == "counsellor"

    async def test_the_printed_device_link_logs_the_terminal_in(self, client, db, clock):
        """The terminal's login is its device link: opened, it logs a device in at the
        Friedensplatz site; seeding again prints a new one."""
        logins = await seed_demo(db, clock.now())
        terminal = next(x for x in logins if x.role == "terminal")
        assert terminal.password.startswith("/device#")
        resp = await client.post(
            "/api/terminal/session", json={"token": terminal.password.split("#", 1)[1]}
        )
        assert resp.status == 200, await resp.text()
        me = (await (await client.get("/api/terminal/me")).json())["terminal"]
        assert (me["site"]["name"], me["organization"]["name"]) == (
            "MigraDo Friedensplatz",
            "Stadt Dortmund – Sozialamt",
        )
        again = await seed_demo(db, clock.now())
        assert next(x for x in again if x.role == "terminal").password != terminal.password

    async def test_demo_has_a_default_and_a_jobcenter_tariff(self, db, clock):
        """The finance page of the demo shows real amounts: a default tariff and the
        Jobcenter's own, each made once however often the demo is seeded."""
        await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        async with db.read() as session:
            found = (await session.exec(select(Tariff))).all()
        assert sorted((t.name, t.organization_id is None, t.in_house) for t in found) == [
            ("Jobcenter Rahmenvertrag", False, False),
            ("Kolleg*innen im Haus", True, True),
            ("Standard", True, False),
        ]
        assert all(t.price_per_unit_cents > 0 for t in found if not t.in_house)

    async def test_management_sees_four_weeks_of_history(self, client, db, clock):
        """`leitung` logs in and finds the demo's history in the figures: requests per
        language, interpreters' hours; seeding again adds no second history."""
        await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        resp = await client.post(
            "/api/session", json={"username": "leitung", "password": "demo-tolk-2026"}
        )
        assert resp.status == 200
        body = await (await client.get("/api/stats/languages")).json()
        rows = {r["language"]: r for r in body["rows"]}
        assert rows["uk"]["requests"] > rows["kmr"]["requests"] > 0
        assert sum(r["requests"] for r in rows.values()) < 30 * 24
        people = await (await client.get("/api/stats/interpreters")).json()
        assert all(p["online_s"] > p["talk_s"] for p in people["rows"] if p["online_s"])

    async def test_the_welcome_centre_has_two_sites_with_counsellors_on_each(
        self, client, db, clock
    ):
        """The admin finds MigraDo Friedensplatz and the Infopoint under the city's
        organisation, a counsellor on each, made once however often the demo is seeded; the
        history's requests carry their counsellor's site."""
        await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        resp = await client.post(
            "/api/session", json={"username": "admin", "password": "demo-tolk-2026"}
        )
        assert resp.status == 200
        me = (await (await client.get("/api/me")).json())["user"]
        query = f"/api/admin/sites?organization_id={me['organization']['id']}"
        sites = (await (await client.get(query)).json())["sites"]
        assert sorted(s["name"] for s in sites) == ["Infopoint", "MigraDo Friedensplatz"]
        assert all(s["time_zone"] == "Europe/Berlin" and s["active"] for s in sites)
        users = (await (await client.get("/api/admin/users?role=counsellor")).json())["users"]
        names = {s["id"]: s["name"] for s in sites}
        on_site = {u["username"]: names.get(u["site_id"]) for u in users}
        assert on_site["berater.sozialamt"] == "MigraDo Friedensplatz"
        assert on_site["berater.infopoint"] == "Infopoint"
        async with db.read() as session:
            asked = set(
                (await session.exec(select(InterpretationRequest.site_id).distinct())).all()
            )
        assert set(names) <= asked
        assert None not in asked


async def test_an_arabic_speaking_counsellor_is_asked_first(db, clock, client):
    """The demo's in-house colleague: a counsellor with an Arabic profile in the in-house
    pool, who may open the interpreter's page."""
    await seed_demo(db, clock.now())
    async with db.read() as session:
        [nour] = [p for p in await roster.list_profiles(session) if p.username == "berater.nour"]
    assert (nour.role, nour.pool_id, [x.tag for x in nour.languages]) == (
        "counsellor",
        "in_house",
        ["ar"],
    )
    resp = await client.post(
        "/api/session", json={"username": "berater.nour", "password": "demo-tolk-2026"}
    )
    assert resp.status == 200
    assert (await (await client.get("/api/me")).json())["interprets"] is True
