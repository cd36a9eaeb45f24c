"""API tokens: expiry, scopes, last use, listing, revocation, and who may hold one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiohttp import WSServerHandshakeError

from accounts.models import Role
from tests.factories import PASSWORD
from tests.security.examples import example_body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue(client, factory, user_id: str, **extra) -> dict:
    resp = await client.post(
        "/api/admin/tokens",
        json={"user_id": user_id, "name": "job", **extra},
        headers=factory.headers(),
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


class TestIssuing:
    async def test_the_documented_request_still_works(self, client, factory, clock, settings):
        """`{user_id, name}` issues a token of the whole role that runs out after the default."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        body = await issue(client, factory, admin.id)
        assert body["scopes"] == ["*"]
        expires = clock.now() + timedelta(days=settings.api_token_days)
        assert body["expires_at"] == expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert (await client.get("/api/admin/users", headers=bearer(body["token"]))).status == 200

    async def test_tokens_for_people_other_than_oneself_are_refused(self, client, factory):
        """A token for an interpreter (or any person) is 403; for a machine account it is issued."""
        admin = await factory.user(Role.ADMIN)
        interpreter = await factory.interpreter()
        robot = await factory.user(Role.FINANCE, machine=True)
        await factory.login(admin)
        refused = await client.post(
            "/api/admin/tokens",
            json={"user_id": interpreter.id, "name": "x"},
            headers=factory.headers(),
        )
        assert refused.status == 403
        assert (await refused.json())["error"]["code"] == "not_a_machine_account"
        await issue(client, factory, robot.id, scopes=["billing:read"])

    async def test_a_token_cannot_issue_or_revoke_tokens(self, client, factory):
        """Only a person logged in issues and revokes tokens, not a (perhaps leaked) token."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        body = await issue(client, factory, admin.id)
        other = await factory.new_client()
        resp = await other.post(
            "/api/admin/tokens",
            json={"user_id": admin.id, "name": "more"},
            headers=bearer(body["token"]),
        )
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "login_required"
        resp = await other.delete(f"/api/admin/tokens/{body['id']}", headers=bearer(body["token"]))
        assert resp.status == 403
        await other.close()

    @pytest.mark.parametrize("scope", ["bogus", "billing:write", "dispatch"])
    async def test_scopes_beyond_the_owner_are_refused(self, client, factory, scope):
        """Unknown scopes and areas the owner's role cannot use at all are 422."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.FINANCE, machine=True)
        await factory.login(admin)
        resp = await client.post(
            "/api/admin/tokens",
            json={"user_id": robot.id, "name": "x", "scopes": [scope]},
            headers=factory.headers(),
        )
        assert resp.status == 422
        body = await resp.json()
        assert body["error"]["code"] == "invalid_scope"
        assert body["error"]["fields"][0]["field"] == "scopes"


class TestUsing:
    async def test_scope_limits_what_a_token_does(self, client, factory):
        """An `accounts:read` token reads users; it changes, exports and opens nothing."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.ADMIN, machine=True)
        await factory.login(admin)
        token = (await issue(client, factory, robot.id, scopes=["accounts:read"]))["token"]
        other = await factory.new_client()
        assert (await other.get("/api/admin/users", headers=bearer(token))).status == 200
        changed = await other.post(
            "/api/admin/organizations", json={"name": "New"}, headers=bearer(token)
        )
        assert changed.status == 403
        assert (await changed.json())["error"]["code"] == "insufficient_scope"
        assert (await other.get("/api/usage", headers=bearer(token))).status == 403
        with pytest.raises(WSServerHandshakeError) as refused:
            await other.ws_connect("/ws", headers=bearer(token))
        assert refused.value.status == 403
        await other.close()

    async def test_socket_scope_opens_the_socket_only(self, client, factory):
        """A `socket` token of an interpreter machine account opens /ws and nothing else."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.INTERPRETER, machine=True)
        await factory.login(admin)
        token = (await issue(client, factory, robot.id, scopes=["socket"]))["token"]
        ws = await factory.socket(token)
        await ws.close()
        other = await factory.new_client()
        assert (await other.get("/api/me", headers=bearer(token))).status == 403
        await other.close()

    async def test_tokens_expire(self, client, factory, clock):
        """A token works until its expiry and not a second after."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        token = (await issue(client, factory, admin.id, valid_days=1))["token"]
        other = await factory.new_client()
        clock.advance(86400 - 1)
        assert (await other.get("/api/me", headers=bearer(token))).status == 200
        clock.advance(1)
        assert (await other.get("/api/me", headers=bearer(token))).status == 401
        await other.close()

    async def test_listing_shows_last_use_and_never_the_secret(self, client, factory, clock):
        """The list names each token's owner, scopes, expiry and last use; no value or hash."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.FINANCE, machine=True)
        await factory.login(admin)
        body = await issue(client, factory, robot.id, scopes=["billing:read"])
        clock.advance(120)
        other = await factory.new_client()
        assert (await other.get("/api/usage/summary", headers=bearer(body["token"]))).status == 200
        resp = await client.get(f"/api/admin/tokens?user_id={robot.id}")
        text = await resp.text()
        assert body["token"] not in text
        [listed] = (await resp.json())["tokens"]
        assert listed["user"] == {
            "id": robot.id,
            "username": robot.username,
            "display_name": robot.display_name,
            "machine": True,
        }
        assert listed["scopes"] == ["billing:read"]
        assert listed["created_by"] == admin.id
        assert listed["last_used_at"] is not None
        assert listed["active"] is True
        await other.close()

    async def test_revoked_tokens_leave_the_list_and_stop_working(self, client, factory):
        """Revoking stops a token at once; the list shows it only when asked for ended ones."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        body = await issue(client, factory, admin.id)
        assert (
            await client.delete(f"/api/admin/tokens/{body['id']}", headers=factory.headers())
        ).status == 204
        assert (await client.get("/api/me", headers=bearer(body["token"]))).status == 401
        assert (await (await client.get("/api/admin/tokens")).json())["tokens"] == []
        ended = (await (await client.get("/api/admin/tokens?include_ended=true")).json())["tokens"]
        assert [t["id"] for t in ended] == [body["id"]]
        assert ended[0]["active"] is False


class TestEnding:
    async def test_password_change_ends_the_users_tokens(self, client, factory):
        """After an admin sets a new password, the user's tokens no longer work."""
        owner = await factory.user(Role.ADMIN)
        admin = await factory.user(Role.ADMIN)
        await factory.login(owner)
        token = (await issue(client, factory, owner.id))["token"]
        await factory.login(admin)
        resp = await client.patch(
            f"/api/admin/users/{owner.id}",
            json={"password": "another-good-password"},
            headers=factory.headers(),
        )
        assert resp.status == 200
        assert (await client.get("/api/me", headers=bearer(token))).status == 401

    async def test_deactivation_ends_tokens_for_good(self, client, factory):
        """A deactivated machine account's tokens stop, and reactivating does not revive them."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.FINANCE, machine=True)
        await factory.login(admin)
        token = (await issue(client, factory, robot.id))["token"]
        for active in (False, True):
            resp = await client.patch(
                f"/api/admin/users/{robot.id}", json={"active": active}, headers=factory.headers()
            )
            assert resp.status == 200
        other = await factory.new_client()
        assert (await other.get("/api/me", headers=bearer(token))).status == 401
        await other.close()


class TestMachineAccounts:
    async def test_machine_accounts_have_no_password(self, client, factory):
        """A machine account is made without a password, cannot get one, and cannot log in."""
        admin = await factory.user(Role.ADMIN)
        org = await factory.organization()
        await factory.login(admin)
        body = {
            "username": "export-robot",
            "display_name": "Export",
            "role": "finance",
            "organization_id": org.id,
            "machine": True,
        }
        with_password = await client.post(
            "/api/admin/users", json={**body, "password": PASSWORD}, headers=factory.headers()
        )
        assert with_password.status == 422
        created = await client.post("/api/admin/users", json=body, headers=factory.headers())
        assert created.status == 201
        user = (await created.json())["user"]
        assert user["machine"] is True
        patched = await client.patch(
            f"/api/admin/users/{user['id']}", json={"password": PASSWORD}, headers=factory.headers()
        )
        assert patched.status == 422
        for password in ("", "!", PASSWORD):
            resp = await client.post(
                "/api/session", json={"username": "export-robot", "password": password or "x"}
            )
            assert resp.status == 401

    async def test_people_still_need_a_password(self, client, factory):
        """A user who is not a machine account cannot be made without a password."""
        admin = await factory.user(Role.ADMIN)
        org = await factory.organization()
        await factory.login(admin)
        resp = await client.post(
            "/api/admin/users",
            json={
                "username": "person",
                "display_name": "Person",
                "role": "counsellor",
                "organization_id": org.id,
            },
            headers=factory.headers(),
        )
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["field"] == "password"


class TestScopeMatrix:
    async def test_a_read_only_billing_token_reaches_billing_reads_only(self, client, factory):
        """Every operation of the OpenAPI document: a `billing:read` token of an admin
        machine account gets through to billing's GETs and 403 `insufficient_scope` on
        everything else, so a new operation cannot escape the scopes."""
        admin = await factory.user(Role.ADMIN)
        robot = await factory.user(Role.ADMIN, machine=True)
        await factory.login(admin)
        token = (await issue(client, factory, robot.id, scopes=["billing:read"]))["token"]
        document = await (await client.get("/api/openapi.json")).json()
        other = await factory.new_client()
        wrong = []
        for path, methods in document["paths"].items():
            for method, op in methods.items():
                if not op.get("x-roles"):
                    continue  # public: logging in needs no token
                content = op.get("requestBody", {}).get("content", {})
                kwargs = {}
                if "application/json" in content:
                    kwargs["json"] = example_body(content["application/json"]["schema"], document)
                resp = await other.request(
                    method, re.sub(r"{\w+}", "x", path), headers=bearer(token), **kwargs
                )
                body = await resp.read()
                inside = op["tags"] == ["billing"] and method == "get"
                if inside and resp.status in (401, 403):
                    wrong.append(f"{method} {path}: {resp.status} inside the scope")
                if not inside and (resp.status != 403 or b"insufficient_scope" not in body):
                    wrong.append(f"{method} {path}: {resp.status} outside the scope")
        await other.close()
        assert wrong == []
