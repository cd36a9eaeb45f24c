"""The bus: news fanned out by channel name to whichever instance holds a user's socket.

A message on the bus is news, never the record: Redis pub/sub drops what a disconnected
subscriber misses, so clients re-read state from the database on every (re)connect.
`LocalBus` serves one process; `RedisBus` serves several. Both keep the same contract,
and the same tests run against both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from infra import jsonio

log = structlog.get_logger(__name__)

Handler = Callable[[str, bytes], None]
"""Called with (channel, payload) for every message; must not block (enqueue, don't await)."""


class Subscription:
    """One handler's subscription to one channel; `cancel()` ends it and is idempotent."""

    __slots__ = ("_active", "_bus", "channel", "handler")

    def __init__(self, bus: _HandlerRegistry, channel: str, handler: Handler) -> None:
        self._bus = bus
        self.channel = channel
        self.handler = handler
        self._active = True

    async def cancel(self) -> None:
        """Stop receiving messages on this channel."""
        if self._active:
            self._active = False
            await self._bus._remove(self)


class Bus(Protocol):
    """Publish/subscribe by channel name."""

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def subscribe(self, channel: str, handler: Handler) -> Subscription: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


async def publish_json(bus: Bus, channel: str, message: Any) -> None:
    """Encode a message once and publish it."""
    await bus.publish(channel, jsonio.dumps(message))


def user_channel(user_id: str) -> str:
    """The channel on which everything for one user's sockets is published."""
    return f"user:{user_id}"


CONTROL_PREFIX = b'{"type":"control.'
"""How an order to the hub begins: a message on a user's channel whose type starts with
`control.` is for the instances holding the user's sockets, never for the client. Orders
share the news channel so that a socket costs one subscription, not two."""


async def publish_control(bus: Bus, user_id: str, order: str, **fields: Any) -> None:
    """Publish an order (`control.<order>`) to the hub holding a user's sockets."""
    # The encoder keeps the key order, so the payload begins with CONTROL_PREFIX.
    await publish_json(bus, user_channel(user_id), {"type": f"control.{order}", **fields})


def role_channel(role: str) -> str:
    """The channel on which news for every socket of users with one role is published."""
    return f"role:{role}"


class _HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Subscription]] = defaultdict(list)
        self.reconnects = 0
        """Times the connection to the broker was lost (read by the metrics)."""

    def _deliver(self, channel: str, payload: bytes) -> None:
        for sub in tuple(self._handlers.get(channel, ())):
            try:
                sub.handler(channel, payload)
            except Exception:
                log.exception("bus_handler_failed", channel=channel)

    async def _add(self, channel: str, handler: Handler) -> tuple[Subscription, bool]:
        sub = Subscription(self, channel, handler)
        first = channel not in self._handlers
        self._handlers[channel].append(sub)
        return sub, first

    async def _remove(self, sub: Subscription) -> None:
        subs = self._handlers.get(sub.channel)
        if subs is None:
            return
        with contextlib.suppress(ValueError):
            subs.remove(sub)
        if not subs:
            del self._handlers[sub.channel]
            await self._last_gone(sub.channel)

    async def _last_gone(self, channel: str) -> None:
        """Hook: the last local handler of a channel went away."""


class LocalBus(_HandlerRegistry):
    """The in-process bus: publishing calls the local handlers directly."""

    async def publish(self, channel: str, payload: bytes) -> None:
        self._deliver(channel, payload)

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        sub, _ = await self._add(channel, handler)
        return sub

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus(_HandlerRegistry):
    """The bus over Redis pub/sub, for several instances: one connection subscribes for
    all local handlers, and a reader task dispatches what arrives."""

    def __init__(self, url: str, namespace: str = "tolk") -> None:
        super().__init__()
        self._prefix = f"{namespace}:"
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(url)
        self._pubsub = self._redis.pubsub()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._listening = asyncio.Event()
        # A SUBSCRIBE is only in force once Redis confirms it; until then a message
        # published elsewhere would be lost, so subscribe() waits for the confirmation.
        self._confirmations: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        """Connect and start dispatching; raises if Redis is unreachable."""
        await self._redis.ping()
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    async def _read(self) -> None:
        import redis.exceptions

        backoff = 0.1
        while True:
            try:
                await self._listening.wait()
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
                if message is None:
                    continue
                kind = message["type"]
                channel = message["channel"].decode().removeprefix(self._prefix)
                if kind == "message":
                    self._deliver(channel, message["data"])
                elif kind == "subscribe":
                    waiter = self._confirmations.pop(channel, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.ConnectionError, OSError):
                if backoff == 0.1:  # the first failure since the connection last worked
                    self.reconnects += 1
                log.warning("redis_bus_reconnecting", backoff_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def publish(self, channel: str, payload: bytes) -> None:
        await self._redis.publish(self._prefix + channel, payload)

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        async with self._lock:
            sub, first = await self._add(channel, handler)
            if first:
                waiter = asyncio.get_running_loop().create_future()
                self._confirmations[channel] = waiter
                await self._pubsub.subscribe(self._prefix + channel)
                self._listening.set()
                await asyncio.wait_for(waiter, timeout=5.0)
        return sub

    async def _last_gone(self, channel: str) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.unsubscribe(self._prefix + channel)

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()
        await self._redis.aclose()
        self._handlers.clear()


async def open_bus(redis_url: str | None, namespace: str = "tolk") -> Bus:
    """The bus the settings ask for: Redis when a URL is given, else in-process."""
    if redis_url:
        bus = RedisBus(redis_url, namespace)
        await bus.start()
        return bus
    return LocalBus()
