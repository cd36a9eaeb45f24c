"""GET /api/ice-servers: STUN and TURN with TURN REST API credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from accounts.models import Role
from infra.config import Settings
from signaling.ice import ice_servers_for

SECRET = "turn-shared-secret-for-tests"


def turn_settings(**extra) -> Settings:
    return Settings(
        _env_file=None,
        stun_urls=["stun:turn.example.org:3478"],
        turn_urls=["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:443"],
        turn_secret=SecretStr(SECRET),
        turn_ttl_s=3600,
        **extra,
    )


class TestIceServersFor:
    def test_turn_credentials_follow_the_turn_rest_api(self):
        """Username is `<unix expiry>:<user id>`, credential base64(HMAC-SHA1(secret, username))."""
        now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
        stun, turn = ice_servers_for(turn_settings(), "user-42", now)
        assert stun == {"urls": ["stun:turn.example.org:3478"]}
        assert turn["urls"] == [
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:443",
        ]
        expiry, user_id = turn["username"].split(":")
        assert user_id == "user-42"
        assert int(expiry) == int(now.timestamp()) + 3600
        expected = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert base64.b64decode(turn["credential"]) == expected

    def test_secret_never_appears(self):
        """The shared secret is nowhere in what a peer receives."""
        servers = ice_servers_for(turn_settings(), "u1", datetime.now(UTC))
        assert SECRET not in repr(servers)

    def test_nothing_configured_gives_an_empty_list(self):
        """Without STUN or TURN settings the list is empty (enough on a LAN)."""
        assert ice_servers_for(Settings(_env_file=None), "u1", datetime.now(UTC)) == []

    def test_turn_without_secret_is_left_out(self):
        """TURN URLs without a secret would only fail: they are not handed out."""
        settings = Settings(_env_file=None, turn_urls=["turn:turn.example.org:3478"])
        assert ice_servers_for(settings, "u1", datetime.now(UTC)) == []


class TestIceServersRoute:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "stun_urls": ["stun:turn.example.org:3478"],
                "turn_urls": ["turn:turn.example.org:3478"],
                "turn_secret": SecretStr(SECRET),
                "turn_ttl_s": 600,
            }
        )

    async def test_logged_in_user_gets_servers_with_fresh_credentials(self, client, factory, clock):
        """A logged-in user gets the servers, credentials valid for ttl_s from now."""
        user = await factory.user(Role.INTERPRETER)
        await factory.login(user)
        resp = await client.get("/api/ice-servers")
        assert resp.status == 200
        body = await resp.json()
        assert body["ttl_s"] == 600
        turn = body["ice_servers"][1]
        assert turn["username"] == f"{int(clock.now().timestamp()) + 600}:{user.id}"
        assert SECRET not in await resp.text()

    async def test_token_clients_get_them_too(self, client, factory):
        """Headless peers with an API token get the same list."""
        user = await factory.user(Role.COUNSELLOR)
        token = await factory.token(user)
        resp = await client.get("/api/ice-servers", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200
        assert (await resp.json())["ice_servers"][1]["username"].endswith(f":{user.id}")

    async def test_anonymous_is_refused(self, client):
        """Nobody logged in: 401."""
        resp = await client.get("/api/ice-servers")
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "not_authenticated"


class TestIceServersWithoutTurn:
    async def test_empty_list_without_configuration(self, client, factory):
        """The default configuration hands out an empty list, not someone else's STUN."""
        await factory.login(await factory.user())
        body = await (await client.get("/api/ice-servers")).json()
        assert body == {"ice_servers": [], "ttl_s": 21600}
