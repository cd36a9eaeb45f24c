"""The live language figures on this instance: which sockets watch them, and the
`languages.watch` message by which a socket starts or stops watching.

Only a page that shows the figures needs them (a counsellor's page that is visible and
idle, a terminal's start screen, the statistics page in front); at national size they are
by far the largest traffic, so a page says when it does not want them. A socket that says
nothing watches, as every socket of these roles did before the message existed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from infra.bus import LANGUAGES_CHANNEL, Bus, Subscription
from interpreters.live import WATCHERS
from signaling.hub import Connection
from wire.client import LanguagesWatch
from wire.server import ErrorMessage, LanguagesWatching


class FigureWatchers:
    """The sockets here that get `languages.updated`. A set of its own, so that a
    publication costs one send per watching socket, however many others do not watch."""

    def __init__(self, bus: Bus, read: Callable[[], Awaitable[bytes]]) -> None:
        self._bus = bus
        self._read = read
        self._watching: set[Connection] = set()
        self._last: bytes | None = None
        """The last figures delivered here: what a socket that starts watching gets."""
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
        self._last = payload
        for conn in self._watching:  # send_raw never changes the set (detach does, later)
            conn.send_raw(payload)

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
        last = self._last
        if last is None:  # nothing published since this instance started
            payload = await self._read()
            if self._last is not None:
                return  # a publication reached it while the figures were read
            self._last = last = payload
        conn.send_raw(last)


FIGURE_WATCHERS = web.AppKey("figure_watchers", FigureWatchers)


async def handle_watch(app: web.Application, conn: Connection, msg: LanguagesWatch) -> None:
    """Start or stop sending the socket the live figures; answered by `languages.watching`."""
    if conn.identity.role not in WATCHERS:
        message = "Only the pages that show the language figures may watch them."
        conn.send(ErrorMessage(code="forbidden", message=message, ref=msg.ref))
        return
    await app[FIGURE_WATCHERS].watch(conn, msg.watch)
    conn.send(LanguagesWatching(watch=msg.watch, ref=msg.ref))
