"""Interpreters' presence through their sockets: each open socket is recorded, the last
one closing starts the grace period, and the `presence` message switches status."""

from __future__ import annotations

import structlog
from aiohttp import web

from accounts.models import Role
from infra.appkeys import CLOCK, DATABASE
from infra.clock import Clock
from infra.db import Database
from interpreters import presence
from interpreters.events import change_own_status
from interpreters.keys import PRESENCE_NEWS
from interpreters.models import Presence
from signaling.hub import Connection, ConnectionHook
from wire.client import PresenceMessage
from wire.server import ErrorMessage, PresenceUpdated

log = structlog.get_logger(__name__)


def presence_hooks(
    db: Database, clock: Clock, instance_id: str, grace_s: int
) -> tuple[ConnectionHook, ConnectionHook]:
    """The hub hooks that record interpreters' sockets as they open and close."""

    async def opened(conn: Connection) -> None:
        if conn.identity.role != Role.INTERPRETER:
            return
        async with db.write() as session:
            await presence.socket_opened(session, conn.user_id, conn.id, instance_id, clock.now())

    async def closed(conn: Connection) -> None:
        if conn.identity.role != Role.INTERPRETER:
            return
        async with db.write() as session:
            await presence.socket_closed(session, conn.user_id, conn.id, clock.now(), grace_s)

    return opened, closed


async def handle_presence(app: web.Application, conn: Connection, msg: PresenceMessage) -> None:
    """Switch the interpreter's own status and confirm with the profile."""
    if conn.identity.role != Role.INTERPRETER:
        message = "Only interpreters have a presence."
        conn.send(ErrorMessage(code="forbidden", message=message, ref=msg.ref))
        return
    view = await change_own_status(
        app[DATABASE], app[CLOCK], app[PRESENCE_NEWS], conn.user_id, Presence(msg.status)
    )
    conn.send(PresenceUpdated(status=view.status, ref=msg.ref))
