"""On every (re)connect, send the socket its user's current requests, offers and calls;
after a gap in the bus, bring every open socket up to date the same way."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from dispatch.state import changed_since, current_state
from infra.appkeys import CLOCK, DATABASE
from infra.bus import GapListener
from interpreters.keys import LANGUAGE_BROADCASTER
from signaling.hub import RESYNC_MARGIN, Connection, ConnectionHook, ResyncHook
from signaling.keys import HUB
from signaling.rooms import ROOMS


def send_current_state(app: web.Application) -> ConnectionHook:
    """A hub on_connect hook: news missed while away is re-read from the database."""

    async def hook(conn: Connection) -> None:
        async with app[DATABASE].read() as session:
            messages = await current_state(
                session, conn.user_id, conn.identity.role, app[CLOCK].now()
            )
        for message in messages:
            conn.send(message)

    hook.__name__ = "send_current_state"
    return hook


def send_changes(app: web.Application) -> ResyncHook:
    """A hub on_resync hook: what ended since a gap began (see dispatch.state)."""

    async def hook(conn: Connection, since: datetime) -> None:
        async with app[DATABASE].read() as session:
            messages = await changed_since(session, conn.user_id, conn.identity.role, since)
        for message in messages:
            conn.send(message)

    hook.__name__ = "send_changes"
    return hook


def resync_after_gap(app: web.Application) -> GapListener:
    """The bus's reconnect listener: every socket here, the language figures and the call
    rooms' presence are re-read from the database, since news for them may be lost."""

    def listener(down_s: float) -> None:
        since = app[CLOCK].now() - timedelta(seconds=down_s) - RESYNC_MARGIN
        app[HUB].resync(since)
        app[LANGUAGE_BROADCASTER].poke()
        rooms = app.get(ROOMS)
        if rooms is not None:
            rooms.refresh_soon()

    return listener
