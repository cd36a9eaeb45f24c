"""The news every call change sends, after its transaction committed."""

from __future__ import annotations

import structlog
from aiohttp import web

from calls import lifecycle
from calls.lifecycle import Ending
from calls.views import CallView
from infra.appkeys import BUS
from infra.bus import publish_json, user_channel
from interpreters.events import presence_changed
from interpreters.models import Presence

log = structlog.get_logger(__name__)


async def publish_call(app: web.Application, view: CallView) -> None:
    """`call.updated` to both participants, and to the call's room on every instance."""
    message = {"type": "call.updated", "call": view}
    bus = app[BUS]
    await publish_json(bus, user_channel(view.counsellor.id), message)
    await publish_json(bus, user_channel(view.interpreter.id), message)
    await publish_json(bus, lifecycle.call_channel(view.id), message)


async def announce_ending(app: web.Application, ending: Ending, view: CallView) -> None:
    """After the ending committed: tell both participants and the roster's listeners."""
    log.info(
        "call_ended",
        call_id=view.id,
        end_reason=view.end_reason,
        duration_s=view.duration_s,
    )
    # Wrap-up is announced before the ended call: the interpreter's page offers "ready now"
    # on the ended call, and a click must never be overtaken by the older wrap-up news.
    if ending.wrap_up:
        await presence_changed(app, ending.call.interpreter_id, Presence.WRAP_UP)
    await publish_call(app, view)
