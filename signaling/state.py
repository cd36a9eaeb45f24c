"""On every (re)connect, send the socket its user's current requests, offers and calls."""

from __future__ import annotations

from aiohttp import web

from dispatch.state import current_state
from infra.appkeys import CLOCK, DATABASE
from signaling.hub import Connection, ConnectionHook


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
