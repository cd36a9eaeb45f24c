"""Adding an interpreter as one step, the interpreter pool as the default organisation,
and getting people in with one-time "set your password" links."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from accounts.models import AuditEvent, PasswordLink, Role, User
from interpreters.models import Interpreter
from tests.interpreters.roster import admin_headers, imported_user

GOOD = {
    "username": "selam",
    "display_name": "Selam Tesfaye",
    "languages": ["ti", "am"],
    "gender": "female",
    "agency": "Sprachmittler e.V.",
}


async def counts(db) -> tuple[int, int]:
    async with db.read() as session:
        users = (await session.exec(select(func.count()).select_from(User))).one()
        profiles = (await session.exec(select(func.count()).select_from(Interpreter))).one()
    return users, profiles


class TestAddInOneStep:
    async def test_a_half_wrong_form_writes_nothing(self, client, factory, db):
        """A bad language, then an unknown specialisation: 422 each time, no user and no
        profile left behind, so the corrected form goes through with the same username."""
        headers = await admin_headers(factory)
        before = await counts(db)
        bad_language = {**GOOD, "languages": ["tr", "Deutsch, Türkisch"]}
        resp = await client.post("/api/admin/interpreters", json=bad_language, headers=headers)
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert (error.get("field") or error["fields"][0]["field"]) == "languages.1"
        unknown_skill = {**GOOD, "specializations": ["cooking"]}
        resp = await client.post("/api/admin/interpreters", json=unknown_skill, headers=headers)
        assert resp.status == 422
        assert await counts(db) == before
        resp = await client.post("/api/admin/interpreters", json=GOOD, headers=headers)
        assert resp.status == 201, await resp.text()
        made = (await resp.json())["interpreter"]
        assert (made["username"], made["agency"]) == ("selam", "Sprachmittler e.V.")
        assert sorted(lang["tag"] for lang in made["languages"]) == ["am", "ti"]
        assert await counts(db) == (before[0] + 1, before[1] + 1)

    async def test_new_interpreters_join_the_pool(self, client, factory, db):
        """Without an organisation named, the interpreter joins the organisation most
        interpreters belong to, not the admin's."""
        pool = await factory.organization("Dolmetschpool")
        await factory.interpreter(organization=pool)
        await factory.interpreter(organization=pool)
        await factory.interpreter()
        headers = await admin_headers(factory)
        settings = await (await client.get("/api/admin/settings", headers=headers)).json()
        assert settings["settings"]["interpreter_pool"] == pool.id
        resp = await client.post("/api/admin/interpreters", json=GOOD, headers=headers)
        assert resp.status == 201, await resp.text()
        async with db.read() as session:
            user = (await session.exec(select(User).where(User.username == "selam"))).one()
        assert user.organization_id == pool.id

    async def test_editing_name_and_profile_is_one_step(self, client, factory, db):
        """A refused profile leaves the name unchanged too."""
        headers = await admin_headers(factory)
        olena = await factory.interpreter(("uk",), display_name="Olena K")
        body = {"display_name": "Olena Kovalenko", "languages": ["uk"], "specializations": ["x"]}
        url = f"/api/admin/interpreters/{olena.id}"
        assert (await client.put(url, json=body, headers=headers)).status == 422
        async with db.read() as session:
            assert (await session.get(User, olena.id)).display_name == "Olena K"
        body["specializations"] = []
        assert (await client.put(url, json=body, headers=headers)).status == 200
        async with db.read() as session:
            assert (await session.get(User, olena.id)).display_name == "Olena Kovalenko"


class TestImport:
    async def test_imported_interpreters_keep_their_agency_and_join_the_pool(
        self, client, factory, db
    ):
        """The `agency` column is kept; new interpreters join the pool's organisation."""
        pool = await factory.organization("Dolmetschpool")
        await factory.interpreter(organization=pool)
        headers = await admin_headers(factory)
        roster = "username,display_name,email,languages,gender,specializations,agency\n"
        roster += "olena,Olena Kovalenko,,uk ru,female,,Sprachmittler e.V.\n"
        user = await imported_user(client, headers, db, roster, "olena")
        async with db.read() as session:
            profile = await session.get(Interpreter, user.id)
        assert user.organization_id == pool.id
        assert profile is not None
        assert profile.agency == "Sprachmittler e.V."


class TestPasswordLinks:
    async def test_an_imported_interpreter_sets_a_password_and_logs_in(self, client, factory, db):
        """The admin makes a link; the interpreter opens it, sets a password and logs in;
        the link works once; only its hash is stored; both steps are security events."""
        headers = await admin_headers(factory)
        roster = "username,display_name,email,languages,gender,specializations\n"
        roster += "farid,Farid Ahmadi,,prs,,\n"
        farid = await imported_user(client, headers, db, roster, "farid")
        resp = await client.post(f"/api/admin/users/{farid.id}/password-link", headers=headers)
        assert resp.status == 201, await resp.text()
        link = (await resp.json())["link"]
        path, secret = link["url"].split("#")
        assert path.endswith("/set-password")
        async with db.read() as session:
            stored = (await session.exec(select(PasswordLink))).one()
        assert secret not in stored.token_hash
        page = await client.get("/set-password")
        assert page.status == 200
        who = await client.post("/api/password-link/user", json={"token": secret})
        assert (await who.json())["user"]["display_name"] == "Farid Ahmadi"
        new_password = "Tigris-und-Euphrat-7"
        resp = await client.post(
            "/api/password-link", json={"token": secret, "password": new_password}
        )
        assert resp.status == 204, await resp.text()
        login = await client.post(
            "/api/session", json={"username": "farid", "password": new_password}
        )
        assert login.status == 200
        again = await client.post(
            "/api/password-link", json={"token": secret, "password": "Noch-ein-Passwort-8"}
        )
        assert again.status == 422
        assert (await again.json())["error"]["code"] == "link_not_valid"
        async with db.read() as session:
            actions = (await session.exec(select(AuditEvent.action))).all()
        assert {"password_link_created", "password_changed"} <= set(actions)

    async def test_a_link_runs_out_and_a_newer_one_replaces_it(self, client, factory, clock):
        """After its hours a link no longer works; making a new one ends the old one."""
        headers = await admin_headers(factory)
        user = await factory.user(Role.COUNSELLOR)
        url = f"/api/admin/users/{user.id}/password-link"
        first = (await (await client.post(url, headers=headers)).json())["link"]["url"]
        second = (await (await client.post(url, headers=headers)).json())["link"]["url"]
        for link in (first, second):
            secret = link.split("#")[1]
            status = (await client.post("/api/password-link/user", json={"token": secret})).status
            assert status == (422 if link == first else 200)
        clock.advance(timedelta(hours=73).total_seconds())
        secret = second.split("#")[1]
        resp = await client.post(
            "/api/password-link", json={"token": secret, "password": "Lange-genug-123"}
        )
        assert resp.status == 422

    async def test_a_weak_password_leaves_the_link_usable(self, client, factory):
        """A refused password does not spend the link."""
        headers = await admin_headers(factory)
        user = await factory.user(Role.FINANCE)
        url = f"/api/admin/users/{user.id}/password-link"
        secret = (await (await client.post(url, headers=headers)).json())["link"]["url"]
        secret = secret.split("#")[1]
        weak = await client.post("/api/password-link", json={"token": secret, "password": "kurz"})
        assert weak.status == 422
        ok = await client.post(
            "/api/password-link", json={"token": secret, "password": "Lange-genug-123"}
        )
        assert ok.status == 204
