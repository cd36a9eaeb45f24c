"""Login throttling: guessing is slowed per (username, address) and per address, and
nobody else's failures lock out the owner of an account."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from aiohttp.test_utils import TestClient

from accounts.throttle import LoginThrottle, address_key
from infra.outages import Unavailable
from tests.factories import PASSWORD
from tests.own_redis import own_redis
from tests.waiting import eventually
from tolk.app import create_app


async def _login(client: TestClient, username: str, password: str) -> int:
    resp = await client.post("/api/session", json={"username": username, "password": password})
    return resp.status


@pytest.fixture
async def attacker(factory) -> AsyncIterator[TestClient]:
    """A client from another loopback address than the test's own client."""
    other = await factory.new_client("127.0.0.2")
    yield other
    await other.close()


class TestThrottling:
    async def test_failures_elsewhere_do_not_lock_out_the_owner(
        self, client, factory, settings, attacker
    ):
        """Wrong passwords from one address throttle that address; the owner logs in from hers."""
        user = await factory.user()
        statuses = [
            await _login(attacker, user.username, "wrong")
            for _ in range(settings.login_max_failures_per_user + 3)
        ]
        assert statuses == [401] * settings.login_max_failures_per_user + [429] * 3
        assert await _login(attacker, user.username, PASSWORD) == 429
        assert await _login(client, user.username, PASSWORD) == 200

    async def test_made_up_usernames_throttle_only_that_address(
        self, client, factory, settings, attacker
    ):
        """25 made-up usernames from one address throttle it; other addresses log in."""
        user = await factory.user()
        statuses = [await _login(attacker, f"nobody{i}", "wrong") for i in range(25)]
        limit = settings.login_max_failures_per_address
        assert statuses == [401] * limit + [429] * (25 - limit)
        assert await _login(attacker, user.username, PASSWORD) == 429
        assert await _login(client, user.username, PASSWORD) == 200

    async def test_concurrent_guesses_are_capped(self, client, factory, settings, attacker):
        """15 guesses at once: only as many as the limit get their password checked."""
        user = await factory.user()
        statuses = await asyncio.gather(
            *(_login(attacker, user.username, f"guess{i}") for i in range(15))
        )
        assert sorted(statuses) == [401] * settings.login_max_failures_per_user + [429] * (
            15 - settings.login_max_failures_per_user
        )
        assert await _login(client, user.username, PASSWORD) == 200

    async def test_right_password_clears_the_pair(self, client, factory, settings):
        """Mistyping and then logging in starts the count for that username afresh."""
        user = await factory.user()
        for _ in range(settings.login_max_failures_per_user - 1):
            assert await _login(client, user.username, "typo") == 401
        assert await _login(client, user.username, PASSWORD) == 200
        for _ in range(settings.login_max_failures_per_user - 1):
            assert await _login(client, user.username, "typo") == 401
        assert await _login(client, user.username, PASSWORD) == 200

    async def test_successful_logins_do_not_fill_the_address(self, client, factory, settings):
        """An office behind one address logs in more often than it may fail."""
        users = [await factory.user() for _ in range(3)]
        for _ in range(settings.login_max_failures_per_address // 3 + 2):
            for user in users:
                assert await _login(client, user.username, PASSWORD) == 200

    # Only the Redis stack: the in-process store belongs to one instance.
    @pytest.mark.parametrize("stack", ["postgres"], indirect=True)
    async def test_instances_share_the_counts(
        self, stack, settings, clock, factory, aiohttp_client
    ):
        """Two instances on one Redis: 15 guesses spread over both still meet one limit."""
        assert stack.redis_url is not None
        user = await factory.user()
        second = await aiohttp_client(
            create_app(settings, clock=clock, search_path=stack.search_path)
        )
        clients = [factory.client, second]
        statuses = await asyncio.gather(
            *(_login(clients[i % 2], user.username, f"guess{i}") for i in range(15))
        )
        assert statuses.count(401) == settings.login_max_failures_per_user
        assert statuses.count(429) == 15 - settings.login_max_failures_per_user


class TestAddressKey:
    def test_ipv6_counts_per_64(self):
        """Addresses of one IPv6 /64 count as one; IPv4 and mapped IPv4 count as themselves."""
        assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
        assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
        assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "192.0.2.7"
        assert address_key("unknown") == "unknown"


class TestRedisAway:
    async def test_a_paused_redis_makes_login_unavailable_instead_of_hanging(self, tmp_path):
        """Redis that stops answering turns a login into 503 `unavailable` within its timeout."""
        with own_redis(tmp_path) as redis:
            throttle = LoginThrottle(
                per_user=5, per_address=20, window_s=60, redis_url=redis.url, namespace="t"
            )
            attempt = await throttle.reserve("olena", "127.0.0.1")
            redis.pause()
            try:
                # The bound only keeps a regression from hanging the suite.
                with pytest.raises(Unavailable):
                    await asyncio.wait_for(throttle.reserve("olena", "127.0.0.1"), 30)
                with pytest.raises(Unavailable):
                    await asyncio.wait_for(throttle.succeeded(attempt), 30)
            finally:
                redis.resume()
            await throttle.succeeded(await throttle.reserve("olena", "127.0.0.1"))


class TestClosing:
    async def test_closing_lets_go_of_its_redis_connections(self, tmp_path):
        """On shutdown the throttle closes its connections to Redis (before, they stayed open
        until the process ended)."""
        with own_redis(tmp_path) as server:
            throttle = LoginThrottle(
                per_user=5, per_address=20, window_s=60, redis_url=server.url, namespace="t"
            )
            await throttle.succeeded(await throttle.reserve("olena", "127.0.0.1"))
            observer = redis.asyncio.Redis.from_url(server.url)
            try:

                async def only_the_observer() -> bool:
                    return len(await observer.client_list()) == 1

                assert not await only_the_observer()
                await throttle.close()
                await eventually(only_the_observer)
            finally:
                await observer.aclose()
