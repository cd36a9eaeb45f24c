"""The security event log: what leaves a trace, what an admin reads, and what never appears."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from sqlalchemy import text
from structlog.testing import capture_logs

from accounts.models import Role
from tests.factories import PASSWORD


async def events(client, **query: str) -> list[dict[str, Any]]:
    resp = await client.get("/api/admin/audit", params=query)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["events"]


async def everything_stored(factory) -> str:
    async with factory.db.read() as session:
        rows = (await session.exec(text("SELECT * FROM audit_event"))).all()
    return repr(rows)


@pytest.fixture
def info_logs() -> Iterator[None]:
    """Let info events through while a test captures them (the suite logs warnings only)."""
    before = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    yield
    structlog.configure(wrapper_class=before)


class TestLogins:
    async def test_logins_failures_and_logouts_name_who_when_and_from_where(
        self, client, factory, clock
    ):
        """Each login, failed login and logout is an event with actor, address and target."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        stranger = await factory.new_client("127.0.0.2")
        failed_at = clock.now()
        await stranger.post("/api/session", json={"username": user.username, "password": "nope"})
        clock.advance(1)
        await factory.login(user, stranger)
        clock.advance(1)
        await stranger.delete("/api/session", headers=factory.headers())
        await factory.login(admin)
        about_user = await events(client, target=user.id)
        assert [e["action"] for e in about_user] == ["logout", "login", "login_failed"]
        failed = about_user[2]
        assert failed["actor"] == {
            "id": None,
            "username": "",
            "role": "",
            "via": "anonymous",
            "address": "127.0.0.2",
        }
        assert failed["details"] == {"reason": "wrong_password"}
        assert failed["at"] == failed_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        login = about_user[1]
        assert login["actor"]["id"] == user.id
        assert login["actor"]["via"] == "session"
        assert login["target"] == {"type": "user", "id": user.id, "name": user.username}
        await stranger.close()

    async def test_unknown_usernames_and_passwords_are_never_stored(
        self, client, factory, info_logs
    ):
        """A password typed into the username field, or any password, leaves no trace."""
        admin = await factory.user(Role.ADMIN)
        with capture_logs() as logs:
            await client.post(
                "/api/session", json={"username": "Geheim-Passwort-123", "password": "x"}
            )
            await client.post(
                "/api/session", json={"username": admin.username, "password": "Secret-Guess-9"}
            )
            await factory.login(admin)
        stored = await everything_stored(factory)
        for secret in ("Geheim-Passwort-123", "geheim-passwort-123", "Secret-Guess-9", PASSWORD):
            assert secret not in stored
            assert secret not in repr(logs)
        failed = await events(client, action="login_failed")
        assert [(e["target"] or {}).get("id") for e in failed] in (
            [admin.id, None],
            [None, admin.id],
        )
        audited = [entry for entry in logs if entry.get("audit")]
        assert [e["event"] for e in audited] == ["login_failed", "login_failed", "login"]

    async def test_throttling_is_recorded_once_per_window(self, client, factory, settings):
        """The first refused login of a window is an event; the flood after it is not."""
        admin = await factory.user(Role.ADMIN)
        attacker = await factory.new_client("127.0.0.3")
        for _ in range(settings.login_max_failures_per_user + 5):
            await attacker.post(
                "/api/session", json={"username": admin.username, "password": "guess"}
            )
        await factory.login(admin)
        throttled = await events(client, action="login_throttled")
        assert len(throttled) == 1
        assert throttled[0]["actor"]["address"] == "127.0.0.3"
        assert throttled[0]["target"]["id"] == admin.id
        assert throttled[0]["details"] == {"counter": "pair"}
        assert len(await events(client, action="login_failed")) == (
            settings.login_max_failures_per_user
        )
        await attacker.close()


class TestAdministration:
    async def test_changes_to_users_organisations_tariffs_and_tokens_are_recorded(
        self, client, factory
    ):
        """Creating, changing, deactivating and issuing leave events naming the admin."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        h = factory.headers()
        org = await (
            await client.post("/api/admin/organizations", json={"name": "Neu"}, headers=h)
        ).json()
        org_id = org["organization"]["id"]
        created = await client.post(
            "/api/admin/users",
            json={
                "username": "neu",
                "password": "a-long-password",
                "display_name": "Neu",
                "role": "counsellor",
                "organization_id": org_id,
            },
            headers=h,
        )
        user_id = (await created.json())["user"]["id"]
        await client.patch(
            f"/api/admin/users/{user_id}",
            json={"password": "another-long-password", "active": False},
            headers=h,
        )
        await client.post(
            "/api/admin/tariffs",
            json={
                "name": "T",
                "unit_s": 60,
                "price_per_unit_cents": 100,
                "valid_from": "2026-01-01",
            },
            headers=h,
        )
        await client.post(
            "/api/admin/tokens", json={"user_id": admin.id, "name": "cron"}, headers=h
        )
        mine = await events(client, actor=admin.username)
        assert sorted(e["action"] for e in mine) == [
            "login",
            "organization_created",
            "password_changed",
            "tariff_created",
            "token_issued",
            "user_created",
            "user_deactivated",
        ]
        assert all(e["actor"]["address"] == "127.0.0.1" for e in mine)
        stored = await everything_stored(factory)
        assert "a-long-password" not in stored
        assert "another-long-password" not in stored

    async def test_exports_are_recorded(self, client, factory):
        """A usage export is an event with its format and filter."""
        finance = await factory.user(Role.FINANCE)
        admin = await factory.user(Role.ADMIN)
        await factory.login(finance)
        assert (await client.get("/api/usage?format=csv&from=2026-01-01")).status == 200
        await factory.login(admin)
        [exported] = await events(client, action="usage_exported")
        assert exported["actor"]["id"] == finance.id
        assert exported["details"]["format"] == "csv"
        assert exported["details"]["filters"]["start"].startswith("2025-12-31T23:00:00")


class TestReading:
    async def test_filters_and_pages(self, client, factory, clock):
        """Events come newest first, filtered by action, actor and time, a page at a time."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        start = clock.now()
        for _ in range(3):
            clock.advance(60)
            await factory.login(user)
        await factory.login(admin)
        first = await client.get(
            "/api/admin/audit", params={"action": "login", "actor": user.id, "limit": "2"}
        )
        page = await first.json()
        assert page["more"] is True
        assert len(page["events"]) == 2
        rest = await events(
            client, action="login", actor=user.id, limit="2", before=page["events"][-1]["id"]
        )
        assert len(rest) == 1
        times = [e["at"] for e in page["events"] + rest]
        assert times == sorted(times, reverse=True)
        window = await events(
            client,
            action="login",
            actor=user.username,
            **{"from": (start.replace(microsecond=0)).isoformat(), "to": times[1]},
        )
        assert [e["at"] for e in window] == [times[2]]

    async def test_bad_filters_are_422(self, client, factory):
        """An unknown action or a time without zone names the parameter."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        bad = (({"action": "nope"}, "action"), ({"from": "2026-01-01T00:00"}, "from"))
        for query, field in bad:
            resp = await client.get("/api/admin/audit", params=query)
            assert resp.status == 422
            assert (await resp.json())["error"]["fields"][0]["field"] == field

    async def test_only_admins_read_it(self, client, factory):
        """Anonymous gets 401 and every other role 403."""
        assert (await client.get("/api/admin/audit")).status == 401
        for role in (Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE):
            await factory.login(await factory.user(role))
            assert (await client.get("/api/admin/audit")).status == 403
