"""Live language figures: after presence changes, the pages that show them get the new counts.

Bursts of changes (a shift starting, a sweep) are coalesced into one message per short
delay, so the figures are computed once per burst instead of once per change. They are
published once on the bus; each instance hands them to those of its sockets that watch
them (signaling/figures.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from accounts.models import Role
from infra import jsonio
from infra.bus import LANGUAGES_CHANNEL, Bus, Subscription
from infra.clock import Clock
from infra.db import Database
from infra.outages import Unavailable
from infra.tasks import Tasks
from interpreters import service
from interpreters.languages import autonym, display_name, search_names
from interpreters.views import LanguageAvailability
from wire.server import LanguagesUpdated

if TYPE_CHECKING:
    from interpreters.keys import QueueFigures

log = structlog.get_logger(__name__)


async def language_availability(
    db: Database, queue_figures: QueueFigures, clock: Clock, locale: str = "de"
) -> list[LanguageAvailability]:
    """Every roster language with its online, available, queued and expected-wait figures."""
    async with db.read() as session:
        counts = await service.language_counts(session)
        queues = await queue_figures(session, clock.now())
    figures = [
        LanguageAvailability(
            tag=tag,
            name=display_name(tag, locale),
            autonym=autonym(tag),
            search_names=list(search_names(tag)),
            online=c.online,
            available=c.available,
            queued=queues.get(tag, (0, None))[0],
            eta_s=queues.get(tag, (0, None))[1],
        )
        for tag, c in counts.items()
    ]
    return sorted(figures, key=lambda f: f.name)


async def figures_message(db: Database, queue_figures: QueueFigures, clock: Clock) -> bytes:
    """The `languages.updated` message of the figures now, encoded."""
    figures = await language_availability(db, queue_figures, clock)
    # Sent as `LanguageFigures`, without the names: the page has them from
    # `GET /api/languages`.
    return jsonio.dumps(LanguagesUpdated(languages=list(figures)))


WATCHERS = frozenset({Role.COUNSELLOR, Role.TERMINAL, Role.ADMIN, Role.MANAGEMENT})
"""The roles whose sockets may watch the figures (and do, until they say otherwise)."""

TURN = "languages-updated"
"""The bus turn an instance takes before it publishes figures."""
_PREFIX = b'{"type":"languages.updated"'


class LanguageBroadcaster:
    """Publishes `languages.updated` for every watching socket, coalesced: one message per
    burst of changes on an instance, and at most one per `interval_s` across all
    instances, since every watching socket gets each instance's message. With thousands
    of counsellors online that fan-out, not the figures, costs; so figures equal to the
    last ones published (by any instance) are not sent again."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        queue_figures: Callable[[], QueueFigures],
        clock: Clock,
        delay_s: float = 0.2,
        interval_s: float = 1.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._queue_figures = queue_figures
        self._clock = clock
        self._delay_s = delay_s
        self._interval_s = interval_s
        self._pending: asyncio.Task[None] | None = None
        self._running = Tasks()
        self._last: bytes | None = None
        """The last figures published by any instance, as heard on the bus."""
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        """Listen to what every instance publishes, to tell unchanged figures apart."""
        self._subscription = await self._bus.subscribe(LANGUAGES_CHANNEL, self._heard)

    def _heard(self, _channel: str, payload: bytes) -> None:
        if payload.startswith(_PREFIX):
            self._last = payload

    def poke(self) -> None:
        """Something changed: publish fresh figures soon (once for a burst of pokes)."""
        if self._pending is None:
            self._pending = self._running.spawn(self._publish_soon())

    def resend(self) -> None:
        """Publish the figures soon even if they are unchanged: sockets may have missed the
        last ones (a gap in the bus)."""
        self._last = None
        self.poke()

    async def _publish_soon(self) -> None:
        try:
            await asyncio.sleep(self._delay_s)
            if not await self._take_turn():
                return
            payload = await figures_message(self._db, self._queue_figures(), self._clock)
            if payload == self._last:
                return  # every watching socket has these figures already
            await self._bus.publish(LANGUAGES_CHANNEL, payload)
        except Unavailable:
            self._pending = None  # the database logged its outage; the next change retries
        except Exception:
            self._pending = None
            log.exception("languages_update_failed")

    async def _take_turn(self) -> bool:
        """Wait for this instance's turn to publish; False when another instance took a
        turn after our change, so that its figures (read after it took the turn) hold it."""
        wait_s = await self._bus.claim(TURN, self._interval_s)
        if wait_s:
            # Whoever holds the turn may have read the figures before our change.
            await asyncio.sleep(wait_s)
            # Changes from now on wait for a turn of their own.
            self._pending = None
            if await self._bus.claim(TURN, self._interval_s):
                return False  # taken again since it ended, so after our change: covered
        self._pending = None
        return True

    async def settled(self) -> None:
        """Wait until the publications under way are done (or skipped)."""
        await self._running.settled()

    async def close(self) -> None:
        """Cancel pending publications and stop listening (on shutdown)."""
        await self._running.cancel()
        if self._subscription is not None:
            await self._subscription.cancel()
