"""The socket hub: who is connected here, fan-out of bus news to their sockets, and the
dispatch of client messages to handlers.

Sending never awaits a slow client: frames queue in a bounded outbox per socket, and are
handed to the transport by the hub's turn batch (signaling/turns.py) or, on the plain
path, by a writer task that lives until the outbox is empty; a client that falls too far
behind is dropped (it re-reads state from the database when it reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from collections.abc import Set as AbstractSet
from contextvars import Context
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from accounts.views import Identity
from infra import jsonio
from infra.bus import CONTROL_PREFIX, Bus, Subscription, user_channel
from infra.ids import new_id
from infra.outages import Unavailable
from signaling import turns

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408
CLOSE_RATE_LIMITED = 4429

ConnectionHook = Callable[["Connection"], Awaitable[None]]
ResyncHook = Callable[["Connection", datetime], Awaitable[None]]
"""Sends a socket what may have changed since the given time (a gap in the bus)."""
RESYNC_WORKERS = 8
"""Sockets re-read at once after a gap: the database, not the sockets, is what limits it."""
RESYNC_MARGIN = timedelta(seconds=2)
"""Re-read what changed this long before a gap was noticed (a pong is overdue by ~2 s)."""


class TokenBucket:
    """A per-socket message rate limit: `rate` messages per second, bursts up to `burst`."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def take(self, now: float) -> bool:
        """Spend one token at `now` (time.monotonic()); False when the bucket is empty."""
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


_NO_CALLS: frozenset[str] = frozenset()
_HEARTBEAT_CHECKS = 16
"""Heartbeat checks per interval."""
_HEARTBEAT_SLICE = 256
"""Sockets checked before the heartbeat hands the loop back."""
_PING_BURST = 32
"""Pings sent before the heartbeat pauses for `_PING_GAP_S`."""
_PING_GAP_S = 0.005


class Connection:
    """One open socket of one signed-in user."""

    __slots__ = (
        "_bucket",
        "_burst",
        "_calls",
        "_dropped",
        "_greeted",
        "_limit",
        "_news_held",
        "_outbox",
        "_pinged_at",
        "_queued",
        "_rate",
        "_transport",
        "_turns",
        "_writer",
        "handling",
        "heard_at",
        "id",
        "identity",
        "rate_strikes",
        "ws",
    )

    def __init__(
        self,
        identity: Identity,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        rate: float,
        burst: int,
        outbox_limit: int,
        batch: turns.TurnBatch | None = None,
    ) -> None:
        self.id = new_id()
        self.identity = identity
        self.ws = ws
        self._transport = transport
        # The message rate limit's bucket is made on the first message: most sockets stay
        # idle, and a bucket made then starts as full as one made at connect would be.
        self._bucket: TokenBucket | None = None
        self._rate = rate
        self._burst = burst
        self.heard_at = time.monotonic()
        """When the client last sent a frame (of any kind): the heartbeat's clock."""
        self._pinged_at = 0.0  # 0: no ping awaiting its pong (else: on the hub's clock)
        self.handling = False
        """Whether the session is handling a frame: frames behind it, a pong among them,
        wait unread until it is done."""
        # Made on the first join: most sockets never join a call.
        self._calls: set[str] | None = None
        self.rate_strikes = 0
        # Made on first need and dropped when written: most sockets are idle.
        self._outbox: list[bytes] | None = None
        self._limit = outbox_limit
        self._dropped = False
        # News that reaches the socket while it is being attached waits behind `hello`.
        self._greeted = False
        # ... and behind the state read on connect: news newer than that read must not be
        # overtaken by it (an offer revoked meanwhile would ring again).
        self._news_held: list[bytes] | None = None
        self._queued = False
        self._writer: asyncio.Task[None] | None = None
        self._turns = batch
        """The hub's turn batch (the fast path), or None: a writer task sends."""

    @property
    def user_id(self) -> str:
        return self.identity.user_id

    @property
    def calls(self) -> AbstractSet[str]:
        """Calls this socket has joined: the relay checks membership here, not in the DB."""
        return self._calls or _NO_CALLS

    def joined(self, call_id: str) -> None:
        """Note that this socket joined a call's room."""
        if self._calls is None:
            self._calls = set()
        self._calls.add(call_id)

    def left(self, call_id: str) -> None:
        """Note that this socket left a call's room."""
        if self._calls is not None:
            self._calls.discard(call_id)
            if not self._calls:
                self._calls = None

    def heard(self) -> None:
        """The client sent a frame: it is alive, whatever it sent (a pong or anything else)."""
        self.heard_at = time.monotonic()
        self._pinged_at = 0.0

    def heard_message(self) -> bool:
        """The client sent a message (`heard`), which spends one of its message tokens:
        False when it sends too fast. One clock read for both: a relayed signal does this."""
        self.heard_at = now = time.monotonic()
        self._pinged_at = 0.0
        bucket = self._bucket
        if bucket is None:
            bucket = self._bucket = TokenBucket(self._rate, self._burst)
        return bucket.take(now)

    def check_heartbeat(self, now: float, awake: float, heartbeat_s: float) -> bool:
        """Ping a client silent for `heartbeat_s`; drop one that leaves the ping unanswered
        for `heartbeat_s / 2` of the time the server was awake to read it (aiohttp's own
        heartbeat rule, on the hub's clock `awake`). True when it sent a ping."""
        ws = self.ws
        if ws.closed:
            return False
        if self._pinged_at:
            overdue = awake - self._pinged_at >= heartbeat_s / 2
            if overdue and not self.handling and self._transport is not None:
                log.info("socket_pong_overdue", socket_id=self.id, user_id=self.user_id)
                # As aiohttp does: no close handshake with a peer that no longer answers.
                self._transport.close()
            return False
        if now - self.heard_at < heartbeat_s or self._queued:
            return False  # (frames are about to go out: ping at the next check)
        self._pinged_at = awake
        # A client whose transport is paused is not reading: its pong clock runs
        # without a ping queued behind the frames it has not taken yet.
        if self._writer is None:
            # Frames queued while a paused transport holds the ping follow it in order.
            self._start_write(ws.ping())
        return True

    def send(self, message: Any) -> None:
        """Queue a message (a dict, a model, or JSON bytes) without waiting."""
        self.send_raw(message if isinstance(message, bytes) else jsonio.dumps(message))

    def greet(self, hello: Any) -> None:
        """Send the socket's first message, ahead of anything queued while it was attached."""
        held, self._outbox = self._outbox, None
        self._greeted = True
        self.send(hello)
        if held and self._outbox is not None:
            self._outbox.extend(held)

    def hold_news(self) -> None:
        """Keep the user's news back until `release_news`: the socket's state is being read."""
        if self._news_held is None:
            self._news_held = []

    def release_news(self) -> None:
        """Send the news kept back, in order, after whatever was sent meanwhile."""
        held, self._news_held = self._news_held, None
        for payload in held or ():
            self.send_raw(payload)

    def deliver(self, payload: bytes) -> None:
        """Send a piece of the user's news (from the bus), or keep it back for now."""
        held = self._news_held
        if held is None:
            self.send_raw(payload)
        elif len(held) < self._limit // 2:
            held.append(payload)
        else:
            # So much news during one read: send it on as it comes, the outbox's limit
            # (which counts what is not yet written) still lets a client that is behind go.
            self.release_news()
            self.send_raw(payload)

    def send_raw(self, payload: bytes) -> None:
        """Queue an encoded JSON text frame; drop the client if it has fallen too far behind."""
        if self._dropped or self.ws.closed:
            return
        outbox = self._outbox
        if outbox is None:
            self._outbox = [payload]
        elif len(outbox) >= self._limit:
            log.warning(
                "socket_too_slow", socket_id=self.id, user_id=self.user_id, queued=len(outbox)
            )
            # Once: the close itself may wait for the paused transport, and frames sent
            # meanwhile would only queue for a client that is being let go.
            self._dropped = True
            outbox.clear()
            asyncio.get_running_loop().create_task(
                self.ws.close(code=CLOSE_TOO_SLOW, message=b"too slow")
            )
            return
        else:
            outbox.append(payload)
        if self._writer is None and not self._queued and self._greeted:
            if self._turns is None:
                self._queued = True  # until the writer task starts
                self._writer = asyncio.get_running_loop().create_task(self._drain(None))
            else:
                self._queued = True
                self._turns.add(self)

    def _start_write(self, write: Coroutine[Any, Any, None]) -> bool:
        """Start a write; True when it is done already. Otherwise a writer task finishes it,
        and then the frames left in the outbox after it."""
        rest: Awaitable[None] | None = write
        if self._turns is not None:
            rest = turns.step(write)
            if rest is None:
                return True
        self._writer = asyncio.get_running_loop().create_task(self._drain(rest))
        return False

    def write_out(self) -> None:
        """Hand the queued frames to the transport (the turn batch calls this)."""
        self._queued = False
        frames, self._outbox = self._outbox, None
        if not frames:
            return
        ws = self.ws
        for i, frame in enumerate(frames):
            if ws.closed:
                return
            if (rest := turns.write_text(ws, frame)) is not None:
                # The writer task starts on a later turn, with these behind the frame.
                self._writer = asyncio.get_running_loop().create_task(self._drain(rest))
                self._outbox = frames[i + 1 :]
                return

    async def _drain(self, pending: Awaitable[None] | None) -> None:
        self._queued = False
        try:
            if pending is not None:
                await pending
            while self._outbox and not self.ws.closed:
                await self.ws.send_frame(self._outbox.pop(0), WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._writer = None
            self._outbox = None

    async def close(self, code: int, reason: str) -> None:
        """Close the socket with a code and a short reason."""
        await self.ws.close(code=code, message=reason.encode()[:120])

    async def flush(self) -> None:
        """Wait until everything queued has been handed to the transport."""
        if self._queued and self._turns is not None:
            self.write_out()  # the turn's callback then finds nothing left to write
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await writer


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Hub:
    """Sockets on this instance by user, subscribed to their users' bus channels."""

    def __init__(
        self,
        bus: Bus,
        heartbeat_s: float,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        lookback_s: float = 60.0,
        fast_writes: bool = True,
    ) -> None:
        self._bus = bus
        self.turns = turns.TurnBatch() if fast_writes else None
        """What the sockets' `Connection`s send through (signaling/turns.py), if anything."""
        self._now = now
        self._lookback_s = lookback_s
        self._heartbeat_s = heartbeat_s
        self._heartbeat: asyncio.Task[None] | None = None
        # Tuples, not sets: a user has one socket or a few, and an idle socket's share of
        # the hub is paid once per socket (a one-element set costs 216 bytes, a tuple 48).
        self._by_user: dict[str, tuple[Connection, ...]] = {}
        self._by_role: dict[str, set[Connection]] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._locks: dict[str, _KeyLock] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self.on_attach: list[ConnectionHook] = []
        """Run before `hello`, in order: registrations a client may rely on once greeted."""
        self.on_connect: list[ConnectionHook] = []
        """Run after `hello`, in order: send the client its current state."""
        self.on_disconnect: list[ConnectionHook] = []
        """Run after the socket closed; every hook runs even if one fails."""
        self.on_resync: list[ResyncHook] = []
        """Run after `on_connect` when a socket that stayed open is brought up to date."""
        self.resyncs = 0
        """Sockets brought up to date after a gap in the bus."""
        self._resyncing: set[asyncio.Task[None]] = set()

    @property
    def connection_count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def connections_of(self, user_id: str) -> frozenset[Connection]:
        """This instance's open sockets of a user."""
        return frozenset(self._by_user.get(user_id, ()))

    def start(self) -> None:
        """Start the heartbeat of this instance's sockets."""
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="hub-heartbeat")

    async def _beat(self) -> None:
        # One task for every socket, instead of aiohttp's two timers per socket: an idle
        # socket's memory is what bounds how many one instance can hold. Checking sixteen
        # times per interval keeps each check's batch of pings small (sockets fall due
        # spread over the interval, as they connected) and drops a silent client at most
        # a sixteenth of an interval later than aiohttp would. The loop is handed back
        # every few hundred sockets, so a pass never stalls the relay for long.
        # Pings leave in bursts of a few dozen, a few milliseconds apart: the pongs of a
        # burst come back together and are all read in one turn of the loop, which a
        # request arriving meanwhile has to wait for.
        # A pong's deadline runs on a clock that stands still while this process was kept
        # from running (a starved or stalled server): a check that comes late finds the
        # pongs that arrived meanwhile still unread, and must not hold that against them.
        interval = self._heartbeat_s
        step = interval / _HEARTBEAT_CHECKS
        stalled = 0.0
        while True:
            due = time.monotonic() + step
            await asyncio.sleep(step)
            stalled += max(0.0, time.monotonic() - due)
            checked = pinged = 0
            for conns in list(self._by_user.values()):
                now = time.monotonic()
                for conn in conns:
                    try:
                        pinged += conn.check_heartbeat(now, now - stalled, interval)
                    except Exception:
                        log.exception("socket_heartbeat_failed", socket_id=conn.id)
                checked += len(conns)
                if pinged >= _PING_BURST:
                    checked = pinged = 0
                    await asyncio.sleep(_PING_GAP_S)
                elif checked >= _HEARTBEAT_SLICE:
                    checked = 0
                    await asyncio.sleep(0)

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        # A lock exists only while someone holds or waits for it: an idle user keeps none.
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]

    def sockets_by_role(self) -> dict[str, int]:
        """How many sockets of each role this instance holds."""
        return {role: len(conns) for role, conns in self._by_role.items()}

    async def attach(self, conn: Connection) -> None:
        """Start delivering the user's bus news to this socket, kept back until its state
        has been sent (`bring_up_to_date`)."""
        user_id = conn.user_id
        conn.hold_news()
        self._by_role.setdefault(conn.identity.role.value, set()).add(conn)
        async with self._exclusive(user_id):
            self._by_user[user_id] = (*self._by_user.get(user_id, ()), conn)
            if user_id not in self._subscriptions:
                self._subscriptions[user_id] = await self._bus.subscribe(
                    user_channel(user_id), self._fan_out
                )

    async def detach(self, conn: Connection) -> None:
        """Stop delivering to this socket; drop the user's subscription with the last one."""
        user_id = conn.user_id
        self._by_role.get(conn.identity.role.value, set()).discard(conn)
        async with self._exclusive(user_id):
            conns = self._by_user.get(user_id)
            if conns is None:
                return
            rest = tuple(c for c in conns if c is not conn)
            if rest:
                self._by_user[user_id] = rest
                return
            del self._by_user[user_id]
            sub = self._subscriptions.pop(user_id, None)
            if sub is not None:
                try:
                    await sub.cancel()
                except Exception:
                    log.exception("unsubscribe_failed", user_id=user_id)

    def _fan_out(self, channel: str, payload: bytes) -> None:
        user_id = channel.removeprefix("user:")
        if payload.startswith(CONTROL_PREFIX):
            self._control(user_id, payload)
            return
        for conn in self._by_user.get(user_id, ()):
            conn.deliver(payload)

    def hand_over(self, user_id: str, payload: bytes) -> None:
        """Deliver news (never an order) to a user's sockets here, as the in-process bus's
        fan-out would: the relay's fast path on one instance (`Rooms.hand_over`)."""
        try:
            for conn in self._by_user.get(user_id, ()):
                conn.deliver(payload)
        except Exception:  # as the bus does: the sender is not answered for the recipient
            log.exception("hand_over_failed", user_id=user_id)

    def resync(self, since: datetime, user_id: str | None = None) -> None:
        """Bring open sockets (all, or one user's) up to date from the database, as on a
        new connect, plus what ended since `since`: news for them may have been lost."""
        conns = (
            [c for cs in self._by_user.values() for c in cs]
            if user_id is None
            else list(self._by_user.get(user_id, ()))
        )
        if not conns:
            return
        task = asyncio.get_running_loop().create_task(self._resync(deque(conns), since))
        self._resyncing.add(task)
        task.add_done_callback(self._resyncing.discard)

    async def _resync(self, conns: deque[Connection], since: datetime) -> None:
        async def worker() -> None:
            while conns:
                conn = conns.popleft()
                if conn.ws.closed:
                    continue
                await self.bring_up_to_date(conn)
                for hook in self.on_resync:
                    try:
                        await hook(conn, since)
                    except Unavailable:
                        pass
                    except Exception:
                        log.exception("socket_hook_failed", hook=getattr(hook, "__name__", "?"))
                self.resyncs += 1

        count = len(conns)
        await asyncio.gather(*(worker() for _ in range(min(RESYNC_WORKERS, count))))
        log.info("sockets_resynced", sockets=count)

    def _control(self, user_id: str, payload: bytes) -> None:
        order = jsonio.loads(payload)
        if order.get("type") == "control.resync":
            # Sent after news for the user waited in an instance's outbox, which holds
            # a message for `lookback_s` at most: whatever ended since may be unheard.
            self.resync(self._now() - timedelta(seconds=self._lookback_s), user_id)
            return
        if order.get("type") != "control.close":
            return
        session = order.get("session")
        for conn in self._by_user.get(user_id, ()):
            if session is None or conn.identity.session_key == session:
                asyncio.get_running_loop().create_task(
                    conn.close(CLOSE_UNAUTHORIZED, str(order.get("reason", "closed")))
                )

    async def bring_up_to_date(self, conn: Connection) -> None:
        """Send the socket its current state (the on_connect hooks), then the news that came
        while it was read: news is never overtaken by an older state."""
        conn.hold_news()
        try:
            await self.run_hooks(self.on_connect, conn)
        finally:
            conn.release_news()

    async def run_hooks(self, hooks: list[ConnectionHook], conn: Connection) -> None:
        """Run connection hooks in order; one failing does not stop the rest."""
        for hook in hooks:
            try:
                await hook(conn)
            except Unavailable:
                pass  # the database logged its outage once; the socket stays open
            except Exception:
                log.exception("socket_hook_failed", hook=getattr(hook, "__name__", repr(hook)))

    def track(
        self, cleanup: Coroutine[Any, Any, None], context: Context | None = None
    ) -> asyncio.Task[None]:
        """Run a socket's clean-up as a task that shutdown waits for (in `context`, if given)."""
        task = asyncio.get_running_loop().create_task(cleanup, context=context)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    async def close_all(self, code: int = WSCloseCode.GOING_AWAY, reason: str = "shutdown") -> None:
        """Stop the heartbeat, close every socket (on shutdown) and wait for their clean-up."""
        for task in list(self._resyncing):
            task.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        conns = [c for cs in self._by_user.values() for c in cs]
        await asyncio.gather(*(c.close(code, reason) for c in conns), return_exceptions=True)
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=5)
