"""Self-service terminals: added by an admin with a one-time device link, logged in by it
on one device for long, revoked at once, and allowed to ask for interpreters for their
organisation and to take part in their own calls — nothing else."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from accounts.models import AuditEvent, Organization, Role
from billing.models import UsageRecord
from tests.calls.conftest import receive_type
from tests.factories import PASSWORD, Factory, make_interpreter
from tests.waiting import eventually


async def add(factory: Factory, org: Organization, name: str = "Foyer") -> dict[str, Any]:
    """The admin (logged in on the test's client) adds a terminal at a new site of the
    organisation: {terminal, link}."""
    site = await factory.site(org, "Friedensplatz")
    resp = await factory.client.post(
        "/api/admin/terminals",
        json={"name": name, "site_id": site.id},
        headers=factory.headers(),
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


def secret_of(link: dict[str, Any]) -> str:
    assert "/device#" in link["url"]
    return str(link["url"].split("#", 1)[1])


async def device(factory: Factory, secret: str) -> tuple[Any, int, dict[str, Any]]:
    """A fresh browser that opens a device link: the browser, the status and the answer."""
    browser = await factory.new_client()
    resp = await browser.post(
        "/api/terminal/session", json={"token": secret}, headers=factory.headers()
    )
    return browser, resp.status, await resp.json()


async def admin(factory: Factory) -> Any:
    user = await factory.user(Role.ADMIN)
    await factory.login(user)
    return user


async def events(factory: Factory, target_id: str) -> list[str]:
    async with factory.db.read() as session:
        rows = await session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.target_id) == target_id)
            .order_by(col(AuditEvent.at), col(AuditEvent.id))
        )
        return [row.action for row in rows]


class TestDeviceLink:
    async def test_a_device_link_logs_a_device_in_once(self, factory, settings):
        """The link opens a terminal session on the first device; the second use is 422."""
        await admin(factory)
        org = await factory.organization("Jobcenter")
        added = await add(factory, org)
        terminal = added["terminal"]
        assert terminal["organization"]["name"] == "Jobcenter"
        assert terminal["site"]["name"] == "Friedensplatz"
        assert (terminal["logged_in"], terminal["link_expires_at"] is not None) == (False, True)
        secret = secret_of(added["link"])

        first, status, body = await device(factory, secret)
        assert status == 200, body
        assert body["terminal"]["name"] == "Foyer"
        assert body["terminal"]["idle_reset_s"] == settings.terminal_idle_reset_s
        me = await (await first.get("/api/me")).json()
        assert (me["user"]["role"], me["user"]["organization"]["id"]) == ("terminal", org.id)
        assert me["user"]["site_id"] == terminal["site"]["id"]

        second, status, body = await device(factory, secret)
        assert (status, body["error"]["code"]) == (422, "link_not_valid")
        assert (await second.get("/api/me")).status == 401

        listed = await (await factory.client.get("/api/admin/terminals")).json()
        row = next(t for t in listed["terminals"] if t["id"] == terminal["id"])
        assert (row["logged_in"], row["link_expires_at"]) == (True, None)
        # One moment, one transaction for the first two: their order is not kept.
        assert sorted(await events(factory, terminal["id"])) == [
            "login",
            "terminal_created",
            "terminal_link_created",
        ]
        await first.close()
        await second.close()

    async def test_the_device_session_outlasts_the_idle_timeout(self, factory, clock, settings):
        """A terminal switched off overnight is still logged in in the morning; its session
        ends after TOLK_TERMINAL_SESSION_DAYS."""
        await admin(factory)
        org = await factory.organization()
        browser, status, _ = await device(factory, secret_of((await add(factory, org))["link"]))
        assert status == 200
        clock.advance(settings.session_idle_timeout_s + 3600)
        assert (await browser.get("/api/terminal/me")).status == 200
        clock.advance(settings.terminal_session_days * 86400)
        assert (await browser.get("/api/terminal/me")).status == 401
        await browser.close()

    async def test_an_expired_link_opens_nothing(self, factory, clock, settings):
        await admin(factory)
        org = await factory.organization()
        secret = secret_of((await add(factory, org))["link"])
        clock.advance(settings.terminal_link_hours * 3600 + 1)
        browser, status, body = await device(factory, secret)
        assert (status, body["error"]["code"]) == (422, "link_not_valid")
        await browser.close()

    async def test_a_password_link_is_no_device_link_and_the_other_way_round(self, factory):
        """A person's set-password link logs no device in; a device link sets no password."""
        await admin(factory)
        person = await factory.user(Role.COUNSELLOR)
        made = await factory.client.post(
            f"/api/admin/users/{person.id}/password-link", headers=factory.headers()
        )
        password_secret = (await made.json())["link"]["url"].split("#", 1)[1]
        browser, status, _ = await device(factory, password_secret)
        assert status == 422
        org = await factory.organization()
        device_secret = secret_of((await add(factory, org))["link"])
        resp = await browser.post(
            "/api/password-link",
            json={"token": device_secret, "password": "a long new password 1"},
            headers=factory.headers(),
        )
        assert (await resp.json())["error"]["code"] == "link_not_valid"
        await browser.close()


class TestRevocation:
    async def test_revoking_logs_the_device_out_and_a_new_link_brings_it_back(self, factory):
        """Revoked: the device's API calls are 401 and its socket closes; the unused link is
        void. A re-issued link logs a device in again."""
        await admin(factory)
        org = await factory.organization()
        added = await add(factory, org)
        terminal_id = added["terminal"]["id"]
        browser, _, _ = await device(factory, secret_of(added["link"]))
        ws = await browser.ws_connect("/ws", headers=factory.headers())
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        spare = secret_of(
            (
                await (
                    await factory.client.post(
                        f"/api/admin/terminals/{terminal_id}/link", headers=factory.headers()
                    )
                ).json()
            )["link"]
        )

        resp = await factory.client.delete(
            f"/api/admin/terminals/{terminal_id}", headers=factory.headers()
        )
        assert resp.status == 204
        assert (await browser.get("/api/terminal/me")).status == 401
        while not ws.closed:
            await ws.receive(timeout=5)
        other, status, _ = await device(factory, spare)
        assert status == 422

        made = await factory.client.post(
            f"/api/admin/terminals/{terminal_id}/link", headers=factory.headers()
        )
        again, status, _ = await device(factory, secret_of((await made.json())["link"]))
        assert status == 200
        assert (await again.get("/api/terminal/me")).status == 200
        assert "terminal_revoked" in await events(factory, terminal_id)
        for b in (browser, other, again):
            await b.close()

    async def test_a_new_link_used_on_another_device_logs_the_old_one_out(self, factory):
        """One terminal, one device: the re-issued link moves the terminal to the new one."""
        await admin(factory)
        org = await factory.organization()
        added = await add(factory, org)
        old, _, _ = await device(factory, secret_of(added["link"]))
        ws = await old.ws_connect("/ws", headers=factory.headers())
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        made = await factory.client.post(
            f"/api/admin/terminals/{added['terminal']['id']}/link", headers=factory.headers()
        )
        assert (await old.get("/api/terminal/me")).status == 200
        new, status, _ = await device(factory, secret_of((await made.json())["link"]))
        assert status == 200
        assert (await old.get("/api/terminal/me")).status == 401
        assert (await new.get("/api/terminal/me")).status == 200
        while not ws.closed:  # the old device's socket is closed by the server
            await ws.receive(timeout=5)
        await old.close()
        await new.close()

    async def test_a_terminal_stands_at_a_known_active_site(self, factory):
        """An unknown or deactivated site is 422 `unknown_site`."""
        await admin(factory)
        org = await factory.organization()
        closed = await factory.site(org)
        resp = await factory.client.patch(
            f"/api/admin/sites/{closed.id}", json={"active": False}, headers=factory.headers()
        )
        assert resp.status == 200, await resp.text()
        for site_id in (closed.id, "nosuchsite"):
            resp = await factory.client.post(
                "/api/admin/terminals",
                json={"name": "Foyer", "site_id": site_id},
                headers=factory.headers(),
            )
            assert (resp.status, (await resp.json())["error"]["code"]) == (422, "unknown_site")

    async def test_an_api_token_cannot_mint_device_links(self, factory):
        """A device link is a credential: only an admin logged in makes one."""
        boss = await factory.user(Role.ADMIN)
        token = await factory.token(boss)
        org = await factory.organization()
        site = await factory.site(org)
        resp = await factory.client.post(
            "/api/admin/terminals",
            json={"name": "Foyer", "site_id": site.id},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert (resp.status, (await resp.json())["error"]["code"]) == (403, "login_required")


class TestWhatATerminalMayDo:
    async def test_no_password_no_token_no_user_form(self, factory):
        """A terminal has no password login, no API token and is not made as a plain user."""
        await admin(factory)
        org = await factory.organization()
        terminal, _ = await factory.terminal(org)
        resp = await factory.client.post(
            "/api/session",
            json={"username": terminal.username, "password": PASSWORD},
            headers=factory.headers(),
        )
        assert resp.status == 401
        await factory.login(await factory.user(Role.ADMIN))
        resp = await factory.client.post(
            "/api/admin/tokens",
            json={"user_id": terminal.id, "name": "kiosk"},
            headers=factory.headers(),
        )
        assert (await resp.json())["error"]["code"] == "terminal_account"
        resp = await factory.client.post(
            "/api/admin/users",
            json={
                "username": "kiosk",
                "display_name": "Kiosk",
                "role": "terminal",
                "organization_id": org.id,
                "machine": True,
            },
            headers=factory.headers(),
        )
        assert resp.status == 422

    async def test_its_calls_are_billed_to_its_organisation(self, factory, clock):
        """The terminal asks, an interpreter accepts, both connect, the terminal ends the
        call: the usage record names the terminal's organisation."""
        org = await factory.organization("Sozialamt")
        terminal, cookie = await factory.terminal(org)
        browser = await factory.new_client()
        browser.session.cookie_jar.update_cookies({"tolk_session": cookie})
        interpreter = await make_interpreter(factory, ["ar"])
        token = await factory.token(interpreter)
        iws = await factory.socket(token)
        tws = await browser.ws_connect("/ws", headers=factory.headers())
        assert (await tws.receive_json(timeout=5))["type"] == "hello"

        resp = await browser.post(
            "/api/requests", json={"language": "ar"}, headers=factory.headers()
        )
        assert resp.status == 201, await resp.text()
        offer = (await receive_type(iws, "offer"))["offer"]
        auth = {"Authorization": f"Bearer {token}"}
        accepted = await factory.client.post(f"/api/offers/{offer['id']}/accept", headers=auth)
        call = (await accepted.json())["call"]
        update = await receive_type(tws, "request.updated")
        while update["request"]["state"] != "accepted":
            update = await receive_type(tws, "request.updated")
        for ws in (tws, iws):
            await ws.send_json({"type": "call.join", "call_id": call["id"], "ref": "j"})
            await receive_type(ws, "call.joined")
        for ws in (tws, iws):
            await ws.send_json({"type": "call.media", "call_id": call["id"], "state": "connected"})
        while (await receive_type(tws, "call.updated"))["call"]["state"] != "connected":
            pass
        clock.advance(90)
        ended = await browser.post(f"/api/calls/{call['id']}/hangup", headers=factory.headers())
        assert (await ended.json())["call"]["state"] == "ended"

        async def billed() -> list[UsageRecord]:
            async with factory.db.read() as session:
                return list((await session.exec(select(UsageRecord))).all())

        async def written() -> bool:
            return bool(await billed())

        await eventually(written)
        (record,) = await billed()
        assert (record.organization_id, record.counsellor_id) == (org.id, terminal.id)
        assert record.site_id == terminal.site_id is not None
        assert record.duration_s == 90
        for ws in (tws, iws):
            await ws.close()
        await browser.close()

    async def test_its_socket_takes_part_in_calls_only(self, factory):
        """A terminal's socket may not set a presence or join a consultation room."""
        _, cookie = await factory.terminal()
        browser = await factory.new_client()
        browser.session.cookie_jar.update_cookies({"tolk_session": cookie})
        ws = await browser.ws_connect("/ws", headers=factory.headers())
        hello = await ws.receive_json(timeout=5)
        assert hello["user"]["role"] == "terminal"
        for message in (
            {"type": "presence", "status": "available"},
            {"type": "room.join", "room_id": "x" * 32},
        ):
            await ws.send_json({**message, "ref": message["type"]})
            reply = await receive_type(ws, "error")
            assert (reply["code"], reply["ref"]) == ("forbidden", message["type"])
        await ws.send_json({"type": "ping", "ref": "p"})
        assert (await receive_type(ws, "pong"))["ref"] == "p"
        await ws.close()
        await browser.close()

    async def test_the_request_of_another_terminal_is_not_found(self, factory):
        """Terminals see and cancel only their own requests."""
        org = await factory.organization()
        await make_interpreter(factory, ["uk"])
        _, first_cookie = await factory.terminal(org, "One")
        _, second_cookie = await factory.terminal(org, "Two")
        one = await factory.new_client()
        one.session.cookie_jar.update_cookies({"tolk_session": first_cookie})
        two = await factory.new_client()
        two.session.cookie_jar.update_cookies({"tolk_session": second_cookie})
        made = await one.post("/api/requests", json={"language": "uk"}, headers=factory.headers())
        request_id = (await made.json())["request"]["id"]
        assert (await two.get(f"/api/requests/{request_id}")).status == 404
        gone = await two.delete(f"/api/requests/{request_id}", headers=factory.headers())
        assert gone.status == 404
        cancelled = await one.delete(f"/api/requests/{request_id}", headers=factory.headers())
        assert (await cancelled.json())["request"]["state"] == "cancelled"
        await one.close()
        await two.close()
