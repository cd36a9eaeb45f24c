"""Behind a reverse proxy: forwarded headers count only from trusted proxies, and the
cookie, the Origin check, the CSP, HSTS and the login throttle follow them."""

from __future__ import annotations

import pytest

from accounts.models import Role
from infra.config import Settings
from tests.factories import PASSWORD

PUBLIC = "https://tolk.example.org"
# What nginx (deploy/nginx/tolk.conf) sends for a browser at PUBLIC.
FROM_PROXY = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "tolk.example.org",
    "Origin": PUBLIC,
}


def with_proxies(settings: Settings, proxies: list[str], **more: object) -> Settings:
    return settings.model_copy(update={"trusted_proxies": proxies, **more})


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    # The test client connects from 127.0.0.1: trusted by default here, or not, per test.
    marker = request.node.get_closest_marker("proxies")
    proxies = marker.args[0] if marker else ["127.0.0.0/8"]
    return with_proxies(settings, proxies, login_max_failures_per_address=3)


async def login(client, username: str, password: str, headers: dict[str, str]):
    return await client.post(
        "/api/session", json={"username": username, "password": password}, headers=headers
    )


def with_cookie(resp, headers: dict[str, str]) -> dict[str, str]:
    """The headers plus the session cookie, which the test client (on http) would keep
    back once it is Secure, as a browser would."""
    return {**headers, "Cookie": f"tolk_session={resp.cookies['tolk_session'].value}"}


class TestTrustedProxy:
    async def test_https_at_the_proxy_makes_the_cookie_secure_and_sends_hsts(self, client, factory):
        """Behind a TLS proxy the session cookie is Secure and pages carry HSTS."""
        user = await factory.user(Role.COUNSELLOR)
        resp = await login(client, user.username, PASSWORD, FROM_PROXY)
        assert resp.status == 200, await resp.text()
        assert resp.cookies["tolk_session"]["secure"]
        page = await client.get("/", headers=FROM_PROXY)
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")

    async def test_the_origin_check_uses_the_public_origin(self, client, factory):
        """A state change from the page at the proxy's https origin is accepted."""
        user = await factory.user(Role.COUNSELLOR)
        session = await login(client, user.username, PASSWORD, FROM_PROXY)
        resp = await client.delete("/api/session", headers=with_cookie(session, FROM_PROXY))
        assert resp.status == 204, await resp.text()

    async def test_socket_from_the_public_origin_opens(self, client, factory):
        """The socket upgrade through the proxy passes the Origin check."""
        user = await factory.user(Role.COUNSELLOR)
        session = await login(client, user.username, PASSWORD, FROM_PROXY)
        ws = await client.ws_connect("/ws", headers=with_cookie(session, FROM_PROXY))
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await ws.close()

    async def test_failed_logins_count_against_the_forwarded_address(self, client, factory):
        """Failures from one client address behind the proxy throttle that address only."""
        user = await factory.user(Role.COUNSELLOR)
        failing = {**FROM_PROXY, "X-Forwarded-For": "198.51.100.66"}
        for n in range(3):
            resp = await login(client, f"guess{n}", "wrong", failing)
            assert resp.status == 401
        assert (await login(client, "guess9", "wrong", failing)).status == 429
        assert (await login(client, "guess9", "wrong", FROM_PROXY)).status == 401
        assert (await login(client, user.username, PASSWORD, FROM_PROXY)).status == 200

    async def test_the_client_is_the_last_address_not_a_proxy(self, client, factory):
        """An address a client puts in front of X-Forwarded-For itself is not believed."""
        spoofed = {**FROM_PROXY, "X-Forwarded-For": "203.0.113.1, 198.51.100.66, 127.0.0.1"}
        for n in range(3):
            assert (await login(client, f"guess{n}", "wrong", spoofed)).status == 401
        other_prefix = {**spoofed, "X-Forwarded-For": "203.0.113.2, 198.51.100.66"}
        assert (await login(client, "guess9", "wrong", other_prefix)).status == 429

    @pytest.mark.parametrize("node", ['"[2001:db8::5]"', '"[2001:db8::5]:4711"', "203.0.113.4"])
    async def test_forwarded_header_of_rfc_7239(self, client, factory, node):
        """`Forwarded: for=...;proto=https;host=...` works like the X-Forwarded headers."""
        user = await factory.user(Role.COUNSELLOR)
        headers = {
            "Forwarded": f"for={node};proto=https;host=tolk.example.org",
            "Origin": PUBLIC,
        }
        resp = await login(client, user.username, PASSWORD, headers)
        assert resp.status == 200
        assert resp.cookies["tolk_session"]["secure"]
        logout = await client.delete("/api/session", headers=with_cookie(resp, headers))
        assert logout.status == 204
        for n in range(3):
            assert (await login(client, f"guess{n}", "wrong", headers)).status == 401
        assert (await login(client, "guess9", "wrong", headers)).status == 429
        elsewhere = {**headers, "Forwarded": "for=198.51.100.99;proto=https;host=tolk.example.org"}
        assert (await login(client, "guess9", "wrong", elsewhere)).status == 401


@pytest.mark.proxies(["10.0.0.0/8"])
class TestUntrustedPeer:
    async def test_forwarded_headers_of_an_untrusted_peer_are_ignored(self, client, factory):
        """A client that is no trusted proxy cannot claim https, another host or address."""
        user = await factory.user(Role.COUNSELLOR)
        resp = await login(client, user.username, PASSWORD, factory.headers())
        assert resp.status == 200
        assert not resp.cookies["tolk_session"]["secure"]
        refused = await client.delete("/api/session", headers=FROM_PROXY)
        assert refused.status == 403
        assert (await refused.json())["error"]["code"] == "bad_origin"
        assert "Strict-Transport-Security" not in (await client.get("/")).headers

    async def test_a_forged_address_does_not_escape_the_throttle(self, client, factory):
        """Failures with a different X-Forwarded-For each still count against the peer."""
        for n in range(3):
            headers = {**factory.headers(), "X-Forwarded-For": f"198.51.100.{n}"}
            assert (await login(client, f"guess{n}", "wrong", headers)).status == 401
        headers = {**factory.headers(), "X-Forwarded-For": "198.51.100.200"}
        assert (await login(client, "guess9", "wrong", headers)).status == 429


class TestContentSecurityPolicy:
    async def test_host_header_never_reaches_the_csp(self, client):
        """A forged Host header is not echoed into the CSP."""
        resp = await client.get("/", headers={"Host": "evil.example; script-src *"})
        csp = resp.headers["Content-Security-Policy"]
        assert "evil" not in csp
        assert "connect-src 'self';" in csp

    @pytest.mark.proxies([])
    async def test_without_a_proxy_forwarded_headers_mean_nothing(self, client):
        """With no trusted proxy configured, X-Forwarded-Host is not echoed either."""
        resp = await client.get("/", headers={"X-Forwarded-Host": "evil.example"})
        assert "evil" not in resp.headers["Content-Security-Policy"]


class TestPublicOrigin:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"public_origin": PUBLIC})

    async def test_csp_names_the_public_socket_origin(self, client):
        """With TOLK_PUBLIC_ORIGIN set, connect-src names its wss origin and HSTS is sent."""
        resp = await client.get("/")
        assert (
            "connect-src 'self' wss://tolk.example.org;" in resp.headers["Content-Security-Policy"]
        )
        assert "Strict-Transport-Security" in resp.headers


class TestSetting:
    def test_a_bad_proxy_address_names_the_variable(self, monkeypatch):
        """TOLK_TRUSTED_PROXIES with something that is no address stops start-up clearly."""
        from tolk.settings import SettingsError, load_settings

        monkeypatch.setenv("TOLK_TRUSTED_PROXIES", '["nginx.local"]')
        with pytest.raises(SettingsError, match="TOLK_TRUSTED_PROXIES"):
            load_settings(_env_file=None, secret_key="x")
