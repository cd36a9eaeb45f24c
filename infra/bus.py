"""The bus: news fanned out by channel name to whichever instance holds a user's socket.

A message on the bus is news, never the record: Redis pub/sub drops what a disconnected
subscriber misses, so clients re-read state from the database on every (re)connect, and
every socket re-reads it when the instance's own subscription had a gap.
`LocalBus` serves one process; `RedisBus` serves several. Both keep the same contract,
and the same tests run against both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(slots=True)
class BusStats:
    """What the bus has been through since start-up (exported as metrics)."""

    connected: bool = True
    """Whether the subscription is in force (always, for the in-process bus)."""
    reconnects: int = 0
    """Times the subscription was lost and reconnecting began."""
    publish_retries: int = 0
    """Messages that waited in the outbox and went out later."""
    publish_dropped: int = 0
    """Messages dropped from the outbox (too old, or too many)."""


GapListener = Callable[[float], None]
"""Called (without awaiting) when the bus is back after a gap in its subscription, with
how long the gap lasted in seconds."""


class Bus(Protocol):
    """Publish/subscribe by channel name."""

    stats: BusStats

    def on_reconnect(self, listener: GapListener) -> None: ...

    async def publish(self, channel: str, payload: bytes) -> None: ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (channel, payload) pairs in order, as `publish` would one by one."""
        ...

    async def subscribe(self, channel: str, handler: Handler) -> Subscription: ...

    async def ping(self) -> None: ...

    async def claim(self, name: str, seconds: float) -> float:
        """Take the turn `name` for `seconds` across every instance on this bus: 0.0 when
        taken, else how many seconds the current holder's turn still lasts."""
        ...

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


_USER_PREFIX = user_channel("")
_RESYNC = jsonio.dumps({"type": "control.resync"})
_ALIVE = "bus:alive"
"""A channel nobody publishes on: the subscriber connection always has one subscription,
so that it is in subscribed mode and answers the reader's pings from the start."""


LANGUAGES_CHANNEL = "languages"
"""The channel of the live language figures (`languages.updated`): published once for all
instances, each hands them to those of its sockets that watch them."""


class _HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Subscription]] = defaultdict(list)

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

    def __init__(self) -> None:
        super().__init__()
        self.stats = BusStats()
        self._turns: dict[str, float] = {}

    def on_reconnect(self, listener: GapListener) -> None:
        """Never called: an in-process bus has no gaps."""

    async def publish(self, channel: str, payload: bytes) -> None:
        self._deliver(channel, payload)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        for channel, payload in messages:
            self._deliver(channel, payload)

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        sub, _ = await self._add(channel, handler)
        return sub

    async def ping(self) -> None:
        return None

    async def claim(self, name: str, seconds: float) -> float:
        now = time.monotonic()
        ends = self._turns.get(name, 0.0)
        if ends > now:
            return ends - now
        self._turns[name] = now + seconds
        return 0.0

    async def close(self) -> None:
        self._handlers.clear()


class RedisBus(_HandlerRegistry):
    """The bus over Redis pub/sub, for several instances: one connection subscribes for
    all local handlers, and a reader task dispatches what arrives.

    The reader pings Redis on that connection every `probe_s`; a pong overdue by
    `dead_after_s` (a paused or unreachable server sends no error), a failed read or a
    failed publish is a gap. The reader then opens a fresh connection, subscribes every
    channel again, and once Redis confirmed that, tells the gap listeners, which re-read
    from the database what their sockets may have missed. Publishes that fail meanwhile
    wait in a bounded outbox, in order, and go out when Redis is back (see docs/bus.md).
    For `settle_s` after its own reconnect, a message nobody received waits in the outbox
    too: the other instances may not have subscribed again yet.
    """

    def __init__(
        self,
        url: str,
        namespace: str = "tolk",
        *,
        outbox_s: float = 60.0,
        outbox_limit: int = 10_000,
        timeout_s: float = 1.0,
        probe_s: float = 0.5,
        dead_after_s: float = 2.0,
        settle_s: float = 3.0,
    ) -> None:
        super().__init__()
        self._prefix = f"{namespace}:"
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries inside redis-py: a publish that fails goes to the outbox at once, and
        # no command waits longer than `timeout_s` on a server that stopped answering.
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._timeout_s = timeout_s
        self._probe_s = probe_s
        self._dead_after_s = dead_after_s
        self._outbox_s = outbox_s
        self._outbox_limit = outbox_limit
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._broken = False
        self._closing = False
        self._up = asyncio.Event()
        self._down_since = 0.0
        self._settle_s = settle_s
        self._settle_until = 0.0
        self._outbox: deque[tuple[float, str, bytes]] = deque()
        self._gap_listeners: list[GapListener] = []
        self.stats = BusStats(connected=False)
        # A SUBSCRIBE is only in force once Redis confirms it; until then a message
        # published elsewhere would be lost, so subscribe() waits for the confirmation.
        self._confirmations: dict[str, asyncio.Future[None]] = {}

    async def start(self) -> None:
        """Connect and start dispatching; raises if Redis is unreachable."""
        await self._redis.ping()
        self._pubsub = await self._connect()
        self._set_up()
        self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")

    def on_reconnect(self, listener: GapListener) -> None:
        """Call `listener(down_s)` each time the subscription is back after a gap."""
        self._gap_listeners.append(listener)

    # --- the subscriber connection -------------------------------------------------------

    async def _connect(self) -> Any:
        """A fresh subscriber connection with every channel of this instance subscribed;
        returns once Redis has confirmed them (its pong comes after the subscriptions).
        Channels subscribed meanwhile (sockets keep connecting) are caught up before it
        returns, without holding up those subscribers."""
        import redis.exceptions

        pubsub = self._redis.pubsub()
        try:
            subscribed: set[str] = set()
            missing = [_ALIVE, *self._handlers]
            while missing:
                channels = [self._prefix + c for c in missing]
                for i in range(0, len(channels), 1000):
                    await pubsub.subscribe(*channels[i : i + 1000])
                subscribed.update(missing)
                await pubsub.ping()
                async with asyncio.timeout(self._dead_after_s):
                    while True:
                        message = await pubsub.get_message(timeout=self._probe_s)
                        if message is None:
                            continue
                        if message["type"] == "pong":
                            break
                        self._dispatch(message)
                missing = [c for c in self._handlers if c not in subscribed]
        except (redis.exceptions.RedisError, OSError, TimeoutError):
            await self._discard(pubsub)
            raise
        self._broken = False
        return pubsub

    async def _discard(self, pubsub: Any) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
        # that comes just as the close completes, and the reader, cancelled by close(),
        # would reconnect and run on while close() waits for it.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._timeout_s):
                await pubsub.aclose()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind not in ("message", "subscribe"):
            return
        channel = message["channel"].decode().removeprefix(self._prefix)
        if kind == "message":
            self._deliver(channel, message["data"])
        else:
            waiter = self._confirmations.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _listen(self, pubsub: Any) -> None:
        """Dispatch what arrives until the connection fails or stops answering pings."""
        loop = asyncio.get_running_loop()
        pinged = heard = loop.time()
        while not self._broken and not self._closing:
            now = loop.time()
            if now - heard > self._dead_after_s:
                raise TimeoutError("no pong from Redis")
            if now - pinged >= self._probe_s:
                pinged = now
                await pubsub.ping()
            message = await pubsub.get_message(timeout=self._probe_s)
            if message is None:
                continue
            if message["type"] == "pong":
                heard = loop.time()
            else:
                self._dispatch(message)

    async def _read(self) -> None:
        import redis.exceptions

        backoff = 0.1
        # close() cancels this task; a cancellation swallowed inside a library must not
        # keep it running (close() waits for it), so it also stops at its next turn.
        while not self._closing:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._connect()
                    backoff = 0.1
                    self._set_up()
                await self._listen(self._pubsub)
                if self._closing:
                    break
                error = "gap"
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
                error = type(exc).__name__
            pubsub, self._pubsub = self._pubsub, None
            if pubsub is not None:
                await self._discard(pubsub)
            self._set_down(error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def _set_down(self, error: str) -> None:
        if self.stats.connected:
            self.stats.connected = False
            self.stats.reconnects += 1
            self._up.clear()
            self._down_since = time.monotonic()
            log.warning("bus_unreachable", error=error)

    def _set_up(self) -> None:
        if self.stats.connected:
            return
        self.stats.connected = True
        self._up.set()
        if not self._down_since:
            return  # the first connection, at start-up
        self._settle_until = time.monotonic() + self._settle_s
        down_s = time.monotonic() - self._down_since
        log.info("bus_recovered", down_s=round(down_s, 1))
        for listener in self._gap_listeners:
            try:
                listener(down_s)
            except Exception:
                log.exception("bus_gap_listener_failed")

    # --- publishing ----------------------------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        """Publish now, or hold the message in the outbox while Redis is away; never
        raises, and waits at most `timeout_s` for a server that stopped answering."""
        import redis.exceptions

        if self.stats.connected and not self._outbox:
            try:
                if await self._redis.publish(self._prefix + channel, payload) or (
                    time.monotonic() >= self._settle_until
                ):
                    return
            except (redis.exceptions.RedisError, OSError):
                self._broken = True  # the reader checks its own connection too
        self._hold(channel, payload)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish in order, in one round trip (a pipeline) while Redis is plainly there;
        one at a time, as `publish`, while the outbox holds news or the other instances may
        still be subscribing again (a message nobody heard then waits, and the ones after
        it must wait behind it)."""
        import redis.exceptions

        if len(messages) < 2 or not self._plainly_up():
            for channel, payload in messages:
                await self.publish(channel, payload)
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, payload in messages:
                    pipe.publish(self._prefix + channel, payload)
                await pipe.execute()
        except (redis.exceptions.RedisError, OSError):
            # Where the pipeline broke off is unknown: all of it waits, as a publish that
            # timed out would (a resend may repeat one; the re-sync after it settles that).
            self._broken = True
            for channel, payload in messages:
                self._hold(channel, payload)

    def _plainly_up(self) -> bool:
        return self.stats.connected and not self._outbox and time.monotonic() >= self._settle_until

    def _hold(self, channel: str, payload: bytes) -> None:
        if len(self._outbox) >= self._outbox_limit:
            self._outbox.popleft()
            self.stats.publish_dropped += 1
        self._outbox.append((time.monotonic() + self._outbox_s, channel, payload))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(
                self._drain(), name="redis-bus-outbox"
            )

    async def _drain(self) -> None:
        """Publish the outbox in order once Redis is back; then order a re-sync for each
        user who was sent news from it, so that whatever another instance published in
        between, the user's sockets end with the database's state."""
        import redis.exceptions

        users: set[str] = set()
        try:
            while self._outbox:
                await self._up.wait()
                expires, channel, payload = self._outbox[0]
                if expires <= time.monotonic():
                    self._outbox.popleft()
                    self.stats.publish_dropped += 1
                    continue
                try:
                    receivers = await self._redis.publish(self._prefix + channel, payload)
                except (redis.exceptions.RedisError, OSError):
                    self._broken = True
                    await asyncio.sleep(0.2)
                    continue
                if not receivers and time.monotonic() < self._settle_until:
                    # Nobody heard it, but the other instances may not have subscribed
                    # again yet: wait for them rather than lose, say, a signal.
                    await asyncio.sleep(0.1)
                    continue
                self._outbox.popleft()
                self.stats.publish_retries += 1
                if channel.startswith(_USER_PREFIX) and not payload.startswith(CONTROL_PREFIX):
                    users.add(channel)
            for channel in users:
                with contextlib.suppress(redis.exceptions.RedisError, OSError):
                    await self._redis.publish(self._prefix + channel, _RESYNC)
        finally:
            self._drainer = None

    # --- subscribing ---------------------------------------------------------------------

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        """Subscribe; while Redis is away the channel is subscribed on reconnect (and the
        gap listeners re-read what it missed), so this never fails for an outage."""
        import redis.exceptions

        if not self.stats.connected:
            # The reader's next connection subscribes it (see _connect); no waiting here.
            sub, _ = await self._add(channel, handler)
            return sub
        async with self._lock:
            sub, first = await self._add(channel, handler)
            pubsub = self._pubsub
            if first and pubsub is not None and self.stats.connected:
                waiter = asyncio.get_running_loop().create_future()
                self._confirmations[channel] = waiter
                try:
                    await pubsub.subscribe(self._prefix + channel)
                    async with asyncio.timeout(self._dead_after_s):  # not wait_for: see _discard
                        await waiter
                except (redis.exceptions.RedisError, OSError, TimeoutError):
                    self._confirmations.pop(channel, None)
                    if self._pubsub is pubsub:  # not a connection already replaced
                        self._broken = True
        return sub

    async def _last_gone(self, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is not None and self.stats.connected:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeout_s):
                    await pubsub.unsubscribe(self._prefix + channel)

    async def ping(self) -> None:
        if not self.stats.connected:
            raise ConnectionError("the bus is reconnecting to Redis")
        await self._redis.ping()

    async def claim(self, name: str, seconds: float) -> float:
        """A key that expires with the turn; while Redis is away every caller gets the turn
        (what it then publishes waits in the outbox like anything else)."""
        import redis.exceptions

        key = f"{self._prefix}turn:{name}"
        if not self.stats.connected:
            return 0.0
        try:
            if await self._redis.set(key, b"1", nx=True, px=max(1, round(seconds * 1000))):
                return 0.0
            left_ms = await self._redis.pttl(key)
        except (redis.exceptions.RedisError, OSError):
            return 0.0
        # -2: the turn ended between the two commands; -1 cannot happen (SET gave PX).
        return max(int(left_ms), 0) / 1000

    async def close(self) -> None:
        self._closing = True
        for task in (self._reader, self._drainer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._pubsub is not None:
            await self._discard(self._pubsub)
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        self._handlers.clear()


async def open_bus(redis_url: str | None, namespace: str = "tolk", outbox_s: float = 60.0) -> Bus:
    """The bus the settings ask for: Redis when a URL is given, else in-process."""
    if redis_url:
        bus = RedisBus(redis_url, namespace, outbox_s=outbox_s)
        await bus.start()
        return bus
    return LocalBus()
