"""On every (re)connect, send the socket its user's current requests, offers and calls;
after a gap in the bus, bring every open socket up to date the same way."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatch.state import changed_since, current_state
from infra.bus import GapListener
from infra.clock import Clock
from infra.db import Database
from interpreters.live import LanguageBroadcaster
from signaling.hub import RESYNC_MARGIN, Connection, ConnectionHook, Hub, ResyncHook


def send_current_state(db: Database, clock: Clock) -> ConnectionHook:
    """A hub on_connect hook: news missed while away is re-read from the database."""

    async def hook(conn: Connection) -> None:
        async with db.read() as session:
            messages = await current_state(session, conn.user_id, conn.identity.role, clock.now())
        for message in messages:
            conn.send(message)

    hook.__name__ = "send_current_state"
    return hook


def send_changes(db: Database) -> ResyncHook:
    """A hub on_resync hook: what ended since a gap began (see dispatch.state)."""

    async def hook(conn: Connection, since: datetime) -> None:
        async with db.read() as session:
            messages = await changed_since(session, conn.user_id, conn.identity.role, since)
        for message in messages:
            conn.send(message)

    hook.__name__ = "send_changes"
    return hook


def resync_after_gap(clock: Clock, hub: Hub, broadcaster: LanguageBroadcaster) -> GapListener:
    """The bus's reconnect listener: every socket here and the language figures are re-read
    from the database, since news for them may be lost (the call rooms listen themselves)."""

    def listener(down_s: float) -> None:
        since = clock.now() - timedelta(seconds=down_s) - RESYNC_MARGIN
        hub.resync(since)
        broadcaster.resend()

    return listener
