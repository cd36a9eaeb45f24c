"""Scheduled presence work, run on every instance: keep this instance's sockets fresh and
set offline whoever has had no socket for longer than the grace period."""

from __future__ import annotations

from aiohttp import web

from infra.appkeys import CLOCK, DATABASE, INSTANCE_ID, SETTINGS
from interpreters import presence
from interpreters.events import presences_changed
from interpreters.models import Presence


async def refresh_presence(app: web.Application) -> None:
    """Mark this instance's interpreter sockets as alive; drop those of dead instances."""
    settings = app[SETTINGS]
    async with app[DATABASE].write() as session:
        await presence.refresh_sockets(
            session,
            app[INSTANCE_ID],
            app[CLOCK].now(),
            grace_s=settings.presence_grace_s,
            stale_after_s=3 * settings.ws_heartbeat_s,
        )


async def sweep_presence(app: web.Application) -> list[str]:
    """Apply due grace-period offlines; returns the interpreters set offline."""
    db, now = app[DATABASE], app[CLOCK].now()
    async with db.read() as session:
        if not await presence.offline_due(session, now):
            return []
    async with db.write() as session:
        gone = await presence.sweep_offline(session, now)
    await presences_changed(app, gone, Presence.OFFLINE)
    return gone
