"""News collected inside a transaction and published only after it committed.

Publishing before the commit could tell an interpreter about an offer that a rollback
then undoes; so services append to a `News` and the edge publishes it after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from infra.bus import Bus, publish_json, user_channel

log = structlog.get_logger(__name__)


@dataclass
class News:
    """Messages for users' sockets, in the order they were decided."""

    items: list[tuple[str, Any]] = field(default_factory=list)

    def tell(self, user_id: str, message: Any) -> None:
        """Queue a message for every socket of a user."""
        self.items.append((user_id, message))

    def extend(self, other: News) -> None:
        """Append another batch of news."""
        self.items.extend(other.items)

    async def publish(self, bus: Bus) -> None:
        """Send everything; a bus hiccup loses news, never state (clients re-read on connect)."""
        for user_id, message in self.items:
            try:
                await publish_json(bus, user_channel(user_id), message)
            except Exception:
                log.exception("publish_failed", user_id=user_id)
        self.items.clear()
