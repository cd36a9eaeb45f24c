"""What the HTTP edge does before any handler runs: who asks, from where, in which format."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from pydantic import SecretStr

from accounts.models import Role
from infra.config import Settings
from tests.factories import PASSWORD


class TestLoginForgery:
    async def test_a_form_of_another_site_cannot_log_the_browser_in(self, client, factory):
        """A cross-site form posting the credentials as text/plain gets no session."""
        user = await factory.user()
        body = orjson.dumps({"username": user.username, "password": PASSWORD})
        for origin in ("https://evil.example", factory.origin):
            resp = await client.post(
                "/api/session",
                data=body,
                headers={"Origin": origin, "Content-Type": "text/plain"},
            )
            assert resp.status in (403, 415)
            assert "tolk_session" not in resp.cookies

    @pytest.mark.parametrize(
        "headers",
        [{"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}],
        ids=["origin", "referer-without-origin"],
    )
    async def test_a_script_of_another_site_cannot_log_in(self, client, factory, headers):
        """A foreign Origin is refused on login as on every state-changing request; lacking
        Origin, the Referer decides."""
        user = await factory.user()
        resp = await client.post(
            "/api/session",
            json={"username": user.username, "password": PASSWORD},
            headers=headers,
        )
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "bad_origin"
        assert "tolk_session" not in resp.cookies

    async def test_a_client_that_is_no_browser_logs_in_without_origin(self, client, factory):
        """curl and the simulated interpreter send no Origin and still log in."""
        user = await factory.user()
        resp = await client.post(
            "/api/session", json={"username": user.username, "password": PASSWORD}
        )
        assert resp.status == 200
        assert "tolk_session" in resp.cookies


class TestJsonOnly:
    async def test_a_json_endpoint_refuses_other_content_types_with_415(self, client, factory):
        """A body sent as a form or as text gets 415 `unsupported_media_type`."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            resp = await client.post(
                "/api/admin/organizations",
                data=b'{"name": "Via form"}',
                headers=factory.headers(**{"Content-Type": content_type}),
            )
            assert resp.status == 415, content_type
            assert (await resp.json())["error"]["code"] == "unsupported_media_type"
        resp = await client.get("/api/admin/organizations")
        names = [o["name"] for o in (await resp.json())["organizations"]]
        assert "Via form" not in names

    async def test_json_with_a_charset_is_accepted(self, client, factory):
        """`application/json; charset=utf-8` is JSON."""
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        resp = await client.post(
            "/api/admin/organizations",
            data='{"name": "Übersetzt"}'.encode(),
            headers=factory.headers(**{"Content-Type": "application/json; charset=utf-8"}),
        )
        assert resp.status == 201


class TestAuthenticateFirst:
    async def test_anonymous_admin_call_gets_401_without_the_fields(self, client):
        """`POST /api/admin/users {}` by nobody is 401, not a 422 listing the fields."""
        resp = await client.post("/api/admin/users", json={})
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "not_authenticated"

    async def test_a_wrong_role_gets_403_before_the_body_is_read(self, client, factory):
        """A counsellor sending nonsense to an admin operation hears only 403."""
        await factory.login(await factory.user(Role.COUNSELLOR))
        resp = await client.post("/api/admin/users", data=b"nonsense", headers=factory.headers())
        assert resp.status == 403


OUTSIDE = {"X-Forwarded-For": "203.0.113.9"}


class TestMetricsAccess:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # The test client connects from 127.0.0.1, which is trusted to forward the address
        # of a client elsewhere.
        return settings.model_copy(
            update={"trusted_proxies": ["127.0.0.0/8"], "metrics_token": SecretStr("m-token")}
        )

    async def test_only_this_host_reads_metrics_by_default(self, client):
        """A client on another host gets 401 and no figures; this host reads them."""
        resp = await client.get("/metrics", headers=OUTSIDE)
        assert resp.status == 401
        assert "tolk_http" not in await resp.text()
        assert (await client.get("/metrics")).status == 200

    async def test_the_metrics_token_opens_them_from_anywhere(self, client):
        """With TOLK_METRICS_TOKEN, a scraper elsewhere reads them with the token only."""
        wrong = await client.get("/metrics", headers={**OUTSIDE, "Authorization": "Bearer no"})
        assert wrong.status == 401
        resp = await client.get("/metrics", headers={**OUTSIDE, "Authorization": "Bearer m-token"})
        assert resp.status == 200
        assert "tolk_http_requests_total" in await resp.text()


class TestMetricsNetworks:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"trusted_proxies": ["127.0.0.0/8"], "metrics_networks": ["10.0.0.0/8"]}
        )

    async def test_a_configured_network_reads_metrics_and_others_do_not(self, client):
        """TOLK_METRICS_NETWORKS names who may scrape; this host is then no exception."""
        assert (await client.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})).status == 200
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=OUTSIDE)).status == 401


class TestCaching:
    async def test_login_me_and_exports_are_never_stored(self, client, factory):
        """Login, /api/me, every export format and errors carry Cache-Control: no-store."""
        user = await factory.user(Role.FINANCE)
        login = await client.post(
            "/api/session",
            json={"username": user.username, "password": PASSWORD},
            headers=factory.headers(),
        )
        answers = [login, await client.get("/api/me")]
        for fmt in ("json", "csv", "xlsx"):
            answers.append(await client.get("/api/usage", params={"format": fmt}))
        answers.append(await client.get("/api/usage/summary"))
        answers.append(await client.get("/api/admin/users"))  # 403
        answers.append(await client.get("/api/nothing-here"))  # 404
        for resp in answers:
            assert resp.status < 500
            assert resp.headers["Cache-Control"] == "no-store", resp.url

    async def test_static_files_may_be_cached(self, client):
        """The pages' scripts hold no personal data and are not marked no-store."""
        resp = await client.get("/static/js/api.js")
        assert resp.status == 200
        assert "no-store" not in resp.headers.get("Cache-Control", "")


class TestProtocolErrors:
    @pytest.mark.parametrize(
        "raw",
        [
            b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"NOT A REQUEST\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ],
    )
    async def test_aiohttps_own_400_carries_the_security_headers(self, client, raw):
        """A request line or header aiohttp cannot parse is answered 400 with the security
        headers and no-store, as every other answer."""
        reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
        try:
            writer.write(raw)
            await writer.drain()
            head = (await asyncio.wait_for(reader.read(65536), 5)).decode("latin-1")
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        status_line, *lines = head.split("\r\n\r\n", 1)[0].split("\r\n")
        assert status_line.split(" ")[1] == "400", head
        headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines)}
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
