"""`tolk seed-demo`: the demo roster, made through the roster code, idempotently."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from accounts.models import User
from interpreters import service as roster
from tolk.demo import INTERPRETERS, STAFF, seed_demo

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
    async def test_seed_twice_gives_one_roster(self, db, clock):
        """Seeding twice leaves one set of users and covers the demo languages."""
        first = await seed_demo(db, clock.now())
        await seed_demo(db, clock.now())
        async with db.read() as session:
            users = (await session.exec(select(func.count()).select_from(User))).one()
            counts = await roster.language_counts(session)
            profiles = await roster.list_profiles(session)
        assert users == len(STAFF) + len(INTERPRETERS) == len(first)
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
