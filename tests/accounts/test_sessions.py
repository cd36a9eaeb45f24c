"""Logging in and out, sessions, API tokens, origins, throttling and roles, through HTTP."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.factories import PASSWORD


class TestLogin:
    async def test_login_sets_cookie_and_me_tells_role_and_organization(self, client, factory):
        """A user logs in and /api/me returns their role, organisation and site."""
        org = await factory.organization("Jobcenter Dortmund")
        site = await factory.site(org, "Steinstraße")
        user = await factory.user(Role.COUNSELLOR, "anna", org, "Anna Schulte", site=site)
        resp = await client.post("/api/session", json={"username": "Anna", "password": PASSWORD})
        assert resp.status == 200
        cookie = resp.cookies["tolk_session"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert len(cookie.value) >= 32
        me = await (await client.get("/api/me")).json()
        assert me == {
            "user": {
                "id": user.id,
                "username": "anna",
                "display_name": "Anna Schulte",
                "role": "counsellor",
                "organization": {"id": org.id, "name": "Jobcenter Dortmund"},
                "active": True,
                "machine": False,
                "site_id": site.id,
            },
            "interprets": False,
        }

    async def test_wrong_password_and_unknown_user_get_the_same_401(self, client, factory):
        """Wrong password and unknown user are indistinguishable."""
        await factory.user(Role.COUNSELLOR, "bert")
        wrong = await client.post("/api/session", json={"username": "bert", "password": "nope"})
        unknown = await client.post("/api/session", json={"username": "nobody", "password": "x"})
        assert wrong.status == unknown.status == 401
        assert (
            await wrong.json()
            == await unknown.json()
            == {
                "error": {
                    "code": "invalid_credentials",
                    "message": "Username or password is wrong.",
                }
            }
        )

    async def test_missing_field_is_422_naming_it(self, client):
        """A login without a password is refused with the field named."""
        resp = await client.post("/api/session", json={"username": "x"})
        assert resp.status == 422
        body = await resp.json()
        assert body["error"]["code"] == "invalid_input"
        assert body["error"]["fields"][0]["field"] == "password"

    async def test_each_login_gets_a_new_session_id(self, client, factory):
        """Logging in again replaces the session id, and the old one stops working."""
        user = await factory.user()
        await factory.login(user)
        first = client.session.cookie_jar.filter_cookies(client.make_url("/"))["tolk_session"].value
        await factory.login(user)
        second = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
            "tolk_session"
        ].value
        assert first != second
        other = await factory.new_client()
        other.session.cookie_jar.update_cookies({"tolk_session": first})
        assert (await other.get("/api/me")).status == 401
        await other.close()

    async def test_logout_invalidates_server_side(self, client, factory):
        """After logout the old cookie value no longer authenticates."""
        user = await factory.user()
        await factory.login(user)
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
            "tolk_session"
        ].value
        resp = await client.delete("/api/session", headers=factory.headers())
        assert resp.status == 204
        other = await factory.new_client()
        other.session.cookie_jar.update_cookies({"tolk_session": cookie})
        assert (await other.get("/api/me")).status == 401
        await other.close()

    async def test_idle_and_absolute_timeouts(self, client, factory, clock, settings):
        """A session ends after the idle timeout, and after the absolute timeout despite use."""
        user = await factory.user()
        await factory.login(user)
        clock.advance(settings.session_idle_timeout_s - 60)
        assert (await client.get("/api/me")).status == 200
        clock.advance(settings.session_idle_timeout_s - 60)
        assert (await client.get("/api/me")).status == 200
        clock.advance(settings.session_idle_timeout_s + 1)
        assert (await client.get("/api/me")).status == 401
        await factory.login(user)
        for _ in range(settings.session_absolute_timeout_s // 3600):
            clock.advance(3600)
            await client.get("/api/me")
        assert (await client.get("/api/me")).status == 401

    async def test_deactivated_user_cannot_log_in(self, client, factory):
        """A deactivated user gets 401 and their sessions end."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        other = await factory.new_client()
        await factory.login(user, other)
        await factory.login(admin)
        resp = await client.patch(
            f"/api/admin/users/{user.id}", json={"active": False}, headers=factory.headers()
        )
        assert resp.status == 200
        assert (await other.get("/api/me")).status == 401
        again = await other.post(
            "/api/session", json={"username": user.username, "password": PASSWORD}
        )
        assert again.status == 401
        await other.close()


class TestThrottling:
    async def test_repeated_failures_get_429_with_retry_after(self, client, factory, settings):
        """After the configured number of failures for a user, logins get 429 with Retry-After."""
        user = await factory.user()
        for _ in range(settings.login_max_failures_per_user):
            resp = await client.post(
                "/api/session", json={"username": user.username, "password": "bad"}
            )
            assert resp.status == 401
        resp = await client.post(
            "/api/session", json={"username": user.username, "password": PASSWORD}
        )
        assert resp.status == 429
        assert 0 < int(resp.headers["Retry-After"]) <= settings.login_failure_window_s
        assert (await resp.json())["error"]["code"] == "too_many_requests"

    async def test_other_users_are_not_throttled(self, client, factory, settings):
        """Failures against one username do not block another user's login."""
        victim = await factory.user()
        other = await factory.user()
        for _ in range(settings.login_max_failures_per_user):
            await client.post("/api/session", json={"username": victim.username, "password": "bad"})
        await factory.login(other)


class TestTokens:
    async def test_admin_issues_token_shown_once_and_it_authenticates(self, client, factory):
        """An admin issues a token; it authenticates as its user; it is stored only hashed."""
        admin = await factory.user(Role.ADMIN)
        finance = await factory.user(Role.FINANCE, machine=True)
        await factory.login(admin)
        resp = await client.post(
            "/api/admin/tokens",
            json={"user_id": finance.id, "name": "export"},
            headers=factory.headers(),
        )
        assert resp.status == 201
        token = (await resp.json())["token"]
        other = await factory.new_client()
        me = await other.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert (await me.json())["user"]["role"] == "finance"
        from sqlalchemy import text

        async with factory.db.read() as session:
            stored = (await session.exec(text("SELECT token_hash FROM api_token"))).all()
        assert token not in str(stored)
        await other.close()

    async def test_unknown_or_revoked_token_is_401(self, client, factory):
        """A made-up token and a revoked one are both refused."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        token = await factory.token(user)
        await factory.login(admin)
        token_id = None
        async with factory.db.read() as session:
            from sqlmodel import select

            from accounts.models import ApiToken

            token_id = (await session.exec(select(ApiToken.id))).one()
        assert (
            await client.delete(f"/api/admin/tokens/{token_id}", headers=factory.headers())
        ).status == 204
        other = await factory.new_client()
        for value in ("tolk_made_up", token):
            resp = await other.get("/api/me", headers={"Authorization": f"Bearer {value}"})
            assert resp.status == 401
        await other.close()


class TestOriginAndRoles:
    async def test_state_change_from_foreign_origin_is_refused(self, client, factory):
        """A cookie-authenticated POST from another site gets 403 bad_origin."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        body = {"name": "Evil", "cost_center": ""}
        foreign = await client.post(
            "/api/admin/organizations", json=body, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status == 403
        assert (await foreign.json())["error"]["code"] == "bad_origin"
        missing = await client.post("/api/admin/organizations", json=body)
        assert missing.status == 403
        ours = await client.post("/api/admin/organizations", json=body, headers=factory.headers())
        assert ours.status == 201

    async def test_bearer_clients_need_no_origin(self, client, factory):
        """Machine clients with a token are not subject to the Origin check."""
        admin = await factory.user(Role.ADMIN)
        token = await factory.token(admin)
        resp = await client.post(
            "/api/admin/organizations",
            json={"name": "Via token"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 201

    @pytest.mark.parametrize("role", [Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE])
    async def test_admin_endpoints_refuse_other_roles(self, client, factory, role):
        """Every role other than admin gets 403 from the admin API; nobody logged in gets 401."""
        anonymous = await client.get("/api/admin/users")
        assert anonymous.status == 401
        user = await factory.user(role)
        await factory.login(user)
        assert (await client.get("/api/admin/users")).status == 403
        resp = await client.post(
            "/api/admin/organizations", json={"name": "X"}, headers=factory.headers()
        )
        assert resp.status == 403


class TestAdminUsers:
    async def test_create_user_validates(self, client, factory):
        """Admins create users; a taken username is 409 and a weak password 422."""
        admin = await factory.user(Role.ADMIN)
        org = await factory.organization()
        await factory.login(admin)
        body = {
            "username": "neu",
            "password": "a-long-password",
            "display_name": "Neu",
            "role": "counsellor",
            "organization_id": org.id,
        }
        created = await client.post("/api/admin/users", json=body, headers=factory.headers())
        assert created.status == 201
        assert (await created.json())["user"]["organization"]["id"] == org.id
        taken = await client.post("/api/admin/users", json=body, headers=factory.headers())
        assert taken.status == 409
        assert (await taken.json())["error"]["code"] == "username_taken"
        weak = await client.post(
            "/api/admin/users",
            json={**body, "username": "x2", "password": "short"},
            headers=factory.headers(),
        )
        assert weak.status == 422
        assert (await weak.json())["error"]["code"] == "weak_password"
        bad_role = await client.post(
            "/api/admin/users",
            json={**body, "username": "x3", "role": "boss"},
            headers=factory.headers(),
        )
        assert bad_role.status == 422
        assert (await bad_role.json())["error"]["fields"][0]["field"] == "role"
