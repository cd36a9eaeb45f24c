"""Scheduled presence work, run on every instance: keep this instance's sockets fresh and
set offline whoever has had no socket for longer than the grace period."""

from __future__ import annotations

from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from interpreters import presence
from interpreters.events import PresenceNews
from interpreters.models import Presence


async def refresh_presence(
    db: Database, clock: Clock, settings: Settings, instance_id: str
) -> None:
    """Mark this instance's interpreter sockets as alive; drop those of dead instances."""
    async with db.write() as session:
        await presence.refresh_sockets(
            session,
            instance_id,
            clock.now(),
            grace_s=settings.presence_grace_s,
            stale_after_s=3 * settings.ws_heartbeat_s,
        )


async def sweep_presence(db: Database, clock: Clock, news: PresenceNews) -> list[str]:
    """Apply due grace-period offlines; returns the interpreters set offline."""
    now = clock.now()
    async with db.read() as session:
        if not await presence.offline_due(session, now):
            return []
    async with db.write() as session:
        gone = await presence.sweep_offline(session, now)
    await news.all_changed(gone, Presence.OFFLINE)
    return gone
