"""The live language figures on this instance: which sockets watch them, and the
`languages.watch` message by which a socket starts or stops watching.

Only a page that shows the figures needs them (a counsellor's page that is visible and
idle, a terminal's start screen, the statistics page in front); at national size they are
by far the largest traffic, so a page says when it does not want them. A socket that says
nothing watches, as every socket of these roles did before the message existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from infra.bus import LANGUAGES_CHANNEL, Bus, Subscription
from infra.clock import Clock
from interpreters.live import WATCHERS
from signaling.hub import Connection
from wire.client import LanguagesWatch
from wire.server import ErrorMessage, LanguagesWatching

GROUP = 16
"""Watching sockets handed a publication at once."""
SPREAD_S = 0.25
"""The longest time a publication's groups are spread over."""
FRESH = timedelta(seconds=5)
"""How long the last figures are handed as they are to a socket that starts watching."""
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a publication goes out: `group` sockets at a time, the groups spread evenly over
    `spread_s` at the most."""

    group: int = GROUP
    spread_s: float = SPREAD_S

    def step_s(self, sockets: int) -> float:
        """The time between two groups when `sockets` watch."""
        groups = -(-sockets // self.group)
        return self.spread_s / max(groups - 1, 1)


class FigureWatchers:
    """The sockets here that get `languages.updated`. A set of its own, so that a
    publication costs one send per watching socket, however many others do not watch.

    A publication goes out a group of sockets at a time, the groups spread over a short
    time (`Pacing`): handed to hundreds of sockets at once, it held this instance, the proxy
    and the clients' machines for tens of milliseconds each second, and every request and
    signal due meanwhile waited (bench/results/scale.md). Every watching socket still gets
    every publication, in order: the spread is shorter than the time between two.
    """

    def __init__(
        self,
        bus: Bus,
        read: Callable[[], Awaitable[bytes]],
        clock: Clock,
        *,
        pacing: Pacing = Pacing(),
    ) -> None:
        self._bus = bus
        self._read = read
        self._clock = clock
        self._pacing = pacing
        self._watching: set[Connection] = set()
        self._last: bytes | None = None
        """The last figures delivered here: what a socket that starts watching gets while
        they are fresh."""
        self._last_at = _NEVER
        self._publications = 0
        """Publications delivered so far: what tells a read apart from a newer publication."""
        self._reading: asyncio.Task[bytes] | None = None
        """The one read of the figures under way, shared by every socket that waits for it."""
        self._subscription: Subscription | None = None

    @property
    def count(self) -> int:
        """Sockets on this instance that watch the figures."""
        return len(self._watching)

    async def start(self) -> None:
        """Hand every publication of the figures to the watching sockets."""
        self._subscription = await self._bus.subscribe(LANGUAGES_CHANNEL, self._deliver)

    async def close(self) -> None:
        """Stop listening (on shutdown)."""
        if self._subscription is not None:
            await self._subscription.cancel()

    def _deliver(self, _channel: str, payload: bytes) -> None:
        self._keep(payload)
        self._publications += 1
        watching = list(self._watching)
        self._send_group(payload, watching, 0, self._pacing.step_s(len(watching)))

    def _send_group(
        self, payload: bytes, conns: list[Connection], start: int, step_s: float
    ) -> None:
        end = start + self._pacing.group
        for conn in conns[start:end]:
            if conn in self._watching:  # (not if it stopped watching meanwhile)
                conn.send_raw(payload)
        if end < len(conns):
            asyncio.get_running_loop().call_later(
                step_s, self._send_group, payload, conns, end, step_s
            )

    async def attached(self, conn: Connection) -> None:
        """A hub on_attach hook: a socket of a role that may watch starts watching."""
        if conn.identity.role in WATCHERS:
            self._watching.add(conn)

    async def detached(self, conn: Connection) -> None:
        """A hub on_disconnect hook."""
        self._watching.discard(conn)

    async def watch(self, conn: Connection, on: bool) -> None:
        """Start (with the current figures at once: it may have missed changes) or stop."""
        if not on:
            self._watching.discard(conn)
            return
        # Added before the figures are read: a publication meanwhile reaches it too.
        self._watching.add(conn)
        if self._last is not None and self._clock.now() - self._last_at < FRESH:
            conn.send_raw(self._last)
            return
        # Publications come with presence changes only, so the last one may be old (a
        # queue's wait moves without them); after a restart every page asks at once.
        asked = self._publications
        if self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read_once())
        payload = await asyncio.shield(self._reading)
        if self._publications > asked:
            return  # a publication reached it while the figures were read
        conn.send_raw(payload)

    async def _read_once(self) -> bytes:
        started = self._publications
        try:
            payload = await self._read()
            if self._publications == started:  # else a publication has newer figures
                self._keep(payload)
            return payload
        finally:
            self._reading = None

    def _keep(self, payload: bytes) -> None:
        self._last = payload
        self._last_at = self._clock.now()


FIGURE_WATCHERS = web.AppKey("figure_watchers", FigureWatchers)


async def handle_watch(app: web.Application, conn: Connection, msg: LanguagesWatch) -> None:
    """Start or stop sending the socket the live figures; answered by `languages.watching`."""
    if conn.identity.role not in WATCHERS:
        message = "Only the pages that show the language figures may watch them."
        conn.send(ErrorMessage(code="forbidden", message=message, ref=msg.ref))
        return
    await app[FIGURE_WATCHERS].watch(conn, msg.watch)
    conn.send(LanguagesWatching(watch=msg.watch, ref=msg.ref))
