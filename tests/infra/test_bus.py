"""The bus contract, run against the in-process bus and against Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from infra.bus import Bus, LocalBus, RedisBus
from tests import backends
from tests.own_redis import OwnRedis, own_redis
from tests.waiting import eventually, until


@pytest.fixture(params=["local", "redis"])
async def bus_pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two bus clients that should see each other's messages (one object for LocalBus)."""
    if request.param == "local":
        bus = LocalBus()
        yield bus, bus
        await bus.close()
        return
    backends.need(backends.REDIS_URL, 6379, "Redis")
    namespace = "bus-" + secrets.token_hex(4)
    a, b = RedisBus(backends.REDIS_URL, namespace), RedisBus(backends.REDIS_URL, namespace)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


def collector() -> tuple[list[tuple[str, bytes]], asyncio.Event, object]:
    got: list[tuple[str, bytes]] = []
    arrived = asyncio.Event()

    def handler(channel: str, payload: bytes) -> None:
        got.append((channel, payload))
        arrived.set()

    return got, arrived, handler


class TestBus:
    async def test_message_reaches_subscriber_on_other_client(self, bus_pair):
        """A message published by one client reaches a handler subscribed on the other."""
        publisher, subscriber = bus_pair
        got, arrived, handler = collector()
        await subscriber.subscribe("user:1", handler)
        await publisher.publish("user:1", b'{"type":"x"}')
        await asyncio.wait_for(arrived.wait(), 5)
        assert got == [("user:1", b'{"type":"x"}')]

    async def test_fan_out_to_every_handler(self, bus_pair):
        """Every handler of a channel gets the message, once."""
        publisher, subscriber = bus_pair
        got1, arrived1, h1 = collector()
        got2, arrived2, h2 = collector()
        await subscriber.subscribe("user:2", h1)
        await subscriber.subscribe("user:2", h2)
        await publisher.publish("user:2", b"1")
        await asyncio.wait_for(asyncio.gather(arrived1.wait(), arrived2.wait()), 5)
        assert got1 == got2 == [("user:2", b"1")]

    async def test_other_channels_are_not_delivered(self, bus_pair):
        """A handler sees only its own channel, and nothing after it cancelled."""
        publisher, subscriber = bus_pair
        got, arrived, handler = collector()
        sub = await subscriber.subscribe("user:3", handler)
        await publisher.publish("user:4", b"not yours")
        await publisher.publish("user:3", b"first")
        await asyncio.wait_for(arrived.wait(), 5)
        await sub.cancel()
        arrived.clear()
        _marker, marker_seen, marker_handler = collector()
        await subscriber.subscribe("user:5", marker_handler)
        await publisher.publish("user:3", b"after cancel")
        await publisher.publish("user:5", b"marker")
        # Redis delivers in publish order on one connection, so once the marker arrived,
        # anything still to come for user:3 would have arrived before it.
        await asyncio.wait_for(marker_seen.wait(), 5)
        assert got == [("user:3", b"first")]

    async def test_a_turn_goes_to_one_client_at_a_time(self, bus_pair):
        """While one client holds a named turn the other is told how long it lasts; once it
        has ended the other gets it."""
        first, second = bus_pair
        name = "turn-" + secrets.token_hex(4)
        assert await first.claim(name, 30) == 0.0
        left = await second.claim(name, 30)
        assert 0 < left <= 30
        assert await second.claim("other-" + name, 30) == 0.0
        short = "short-" + secrets.token_hex(4)
        assert await first.claim(short, 0.05) == 0.0

        async def second_gets_it() -> bool:
            return await second.claim(short, 30) == 0.0

        await eventually(second_gets_it)

    async def test_several_messages_at_once_arrive_in_order(self, bus_pair):
        """A batch published together reaches each channel's handlers in the order given."""
        publisher, subscriber = bus_pair
        got, _arrived, handler = collector()
        await subscriber.subscribe("user:10", handler)
        await subscriber.subscribe("user:11", handler)
        batch = [("user:10", b"1"), ("user:11", b"2"), ("user:12", b"nobody"), ("user:10", b"3")]
        await publisher.publish_many(batch)
        await until(lambda: len(got) >= 3)
        assert got == [("user:10", b"1"), ("user:11", b"2"), ("user:10", b"3")]

    async def test_ping(self, bus_pair):
        """A bus that is up answers ping."""
        for bus in bus_pair:
            await bus.ping()


@pytest.fixture
async def blinking(tmp_path) -> AsyncIterator[tuple[OwnRedis, RedisBus, RedisBus]]:
    """Two bus clients on a Redis server of the test's own, which the test may stop."""
    with own_redis(tmp_path) as server:
        a = RedisBus(server.url, "blink", probe_s=0.2, dead_after_s=1.0, timeout_s=0.5)
        b = RedisBus(server.url, "blink", probe_s=0.2, dead_after_s=1.0, timeout_s=0.5)
        await a.start()
        await b.start()
        yield server, a, b
        await a.close()
        await b.close()


class TestRedisOutage:
    async def test_messages_published_while_redis_is_down_arrive_in_order_afterwards(
        self, blinking
    ):
        """Redis stopped: publishing neither fails nor hangs; once it runs again the
        messages arrive, in order, and the subscriber is told its subscription had a gap."""
        server, a, b = blinking
        got, _arrived, handler = collector()
        gaps: list[float] = []
        b.on_reconnect(gaps.append)
        await b.subscribe("user:7", handler)
        server.stop()
        for i in range(3):
            await asyncio.wait_for(a.publish("user:7", str(i).encode()), 3)
        await until(lambda: not b.stats.connected)
        server.start()
        await until(lambda: len(got) >= 3, timeout=10)
        assert [payload for _, payload in got[:3]] == [b"0", b"1", b"2"]
        assert len(gaps) == 1
        assert gaps[0] > 0
        assert a.stats.publish_retries == 3
        assert b.stats.reconnects == 1

    async def test_a_batch_published_while_news_waits_goes_out_behind_it(self, blinking):
        """Redis stopped, then back: a batch published while the outbox still holds news
        from the outage arrives after that news, in order, and the batch published while
        Redis is down waits like any message."""
        server, a, b = blinking
        got, _arrived, handler = collector()
        await b.subscribe("user:9", handler)
        server.stop()
        await asyncio.wait_for(a.publish("user:9", b"0"), 3)
        await asyncio.wait_for(a.publish_many([("user:9", b"1"), ("user:9", b"2")]), 3)
        await until(lambda: not b.stats.connected)
        server.start()
        await until(lambda: a.stats.connected)
        await asyncio.wait_for(a.publish_many([("user:9", b"3"), ("user:9", b"4")]), 3)
        await until(lambda: len(got) >= 5, timeout=10)
        assert [payload for _, payload in got[:5]] == [b"0", b"1", b"2", b"3", b"4"]

    async def test_a_paused_redis_is_noticed_and_nothing_waits_on_it(self, blinking):
        """Redis paused (connections open, no answers): the gap is noticed, a publish gives
        up within its timeout and waits in the outbox, and arrives after the pause."""
        server, a, b = blinking
        got, arrived, handler = collector()
        await b.subscribe("user:8", handler)
        server.pause()
        try:
            await asyncio.wait_for(a.publish("user:8", b"held"), 3)
            await until(lambda: not b.stats.connected)
        finally:
            server.resume()
        await asyncio.wait_for(arrived.wait(), 10)
        assert got == [("user:8", b"held")]
        assert b.stats.connected

    async def test_a_channel_subscribed_during_the_outage_works_afterwards(self, blinking):
        """Subscribing while Redis is down succeeds; the channel is in force once it is back."""
        server, a, b = blinking
        server.stop()
        await until(lambda: not b.stats.connected)
        got, arrived, handler = collector()
        await asyncio.wait_for(b.subscribe("user:9", handler), 3)
        server.start()
        await until(lambda: b.stats.connected and a.stats.connected, timeout=10)
        await a.publish("user:9", b"after")
        await asyncio.wait_for(arrived.wait(), 5)
        assert got == [("user:9", b"after")]

    async def test_channels_subscribed_while_the_bus_reconnects_all_work(self, blinking):
        """Sockets keep subscribing while the reader reconnects to a resumed Redis: every
        one of those channels is in force once the bus is back."""
        server, a, b = blinking
        server.pause()
        try:
            await until(lambda: not b.stats.connected)
        finally:
            server.resume()
        collectors = [collector() for _ in range(20)]
        for i, (_got, _arrived, handler) in enumerate(collectors):
            await b.subscribe(f"user:r{i}", handler)
            await asyncio.sleep(0.02)  # spread over the reconnect (not a synchronisation)
        await until(lambda: b.stats.connected and a.stats.connected, timeout=10)
        for i in range(len(collectors)):
            await a.publish(f"user:r{i}", b"hello")
        for i, (got, arrived, _handler) in enumerate(collectors):
            await asyncio.wait_for(arrived.wait(), 5)
            assert got == [(f"user:r{i}", b"hello")]


class TestClosing:
    async def test_closing_just_as_the_reader_drops_a_broken_connection_ends_it(self, blinking):
        """The app shuts down at the moment the reader has closed a connection that failed:
        close() returns and the reader is gone (before, it reconnected and ran on, and the
        shutdown waited for it forever)."""
        server, _a, b = blinking
        dropped = asyncio.Event()
        pubsub = b._pubsub
        close_connection = pubsub.aclose

        async def close_then_tell() -> None:
            await close_connection()
            asyncio.get_running_loop().call_soon(dropped.set)

        pubsub.aclose = close_then_tell

        async def close_bus_right_then() -> None:
            await dropped.wait()
            await b.close()  # cancels the reader before it resumes from the closing

        closing = asyncio.create_task(close_bus_right_then())
        server.stop()
        done, _ = await asyncio.wait({closing}, timeout=10)
        if not done:  # let the fixture's own close() end
            closing.cancel()
        assert closing in done, "close() still waits for the bus reader"
        assert not b.stats.connected
