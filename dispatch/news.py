"""News collected inside a transaction and published only after it committed.

Publishing before the commit could tell an interpreter about an offer that a rollback
then undoes; so services append to a `News` and the edge publishes it after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from infra import jsonio
from infra.bus import Bus, user_channel
from infra.metrics import Figure, FigureKind, Metrics
from interpreters.models import Presence
from wire.server import ServerMessage

log = structlog.get_logger(__name__)

PresenceAnnouncer = Callable[[str, Presence, str | None], Awaitable[None]]
"""Announces a committed presence change (interpreter id, new status, why)."""


@dataclass(frozen=True, slots=True)
class _PresenceChange:
    status: Presence
    reason: str


@dataclass
class News:
    """Messages for users' sockets, in the order they were decided."""

    items: list[tuple[str, ServerMessage | _PresenceChange]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    """What the transaction did, counted in the metrics once it committed."""

    def tell(self, user_id: str, message: ServerMessage) -> None:
        """Queue a message for every socket of a user."""
        self.items.append((user_id, message))

    def presence_changed(self, interpreter_id: str, status: Presence, reason: str) -> None:
        """Note that dispatch moved an interpreter's status (auto-away, end of wrap-up)."""
        self.items.append((interpreter_id, _PresenceChange(status, reason)))

    def count(self, kind: FigureKind, label: str, value: float = 1) -> None:
        """Note a figure for the metrics (an outcome, a wait)."""
        if value:
            self.figures.append((kind, label, value))

    def extend(self, other: News) -> None:
        """Append another batch of news."""
        self.items.extend(other.items)
        self.figures.extend(other.figures)

    async def publish(self, bus: Bus, announce: PresenceAnnouncer, metrics: Metrics) -> None:
        """Send everything: messages to users' sockets, presence changes to `announce` (the
        roster's announcement, which also refreshes the languages list), the figures to the
        metrics. The bus holds what it cannot send yet and re-syncs sockets after a gap in
        it, so nothing here waits on an outage or fails because of one. Messages between
        presence changes go to the bus together (one round trip to Redis), in order."""
        batch: list[tuple[str, bytes]] = []
        for user_id, message in self.items:
            try:
                if isinstance(message, _PresenceChange):
                    await _send(bus, batch)
                    await announce(user_id, message.status, message.reason)
                else:
                    batch.append((user_channel(user_id), jsonio.dumps(message)))
            except Exception:
                log.exception("publish_failed", user_id=user_id)
        await _send(bus, batch)
        self.items.clear()
        metrics.record(self.figures)
        self.figures.clear()


async def _send(bus: Bus, batch: list[tuple[str, bytes]]) -> None:
    if batch:
        try:
            await bus.publish_many(batch)
        except Exception:
            log.exception("publish_failed", messages=len(batch))
        batch.clear()
