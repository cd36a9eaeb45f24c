"""The news every call change sends, after its transaction committed."""

from __future__ import annotations

import structlog

from calls import lifecycle
from calls.lifecycle import Ending
from infra.bus import Bus, publish_json, user_channel
from interpreters.events import PresenceNews
from interpreters.models import Presence
from wire.objects import CallView
from wire.server import CallUpdated

log = structlog.get_logger(__name__)


async def publish_call(bus: Bus, view: CallView) -> None:
    """`call.updated` to both participants, and to the call's room on every instance."""
    message = CallUpdated(call=view)
    await publish_json(bus, user_channel(view.counsellor.id), message)
    await publish_json(bus, user_channel(view.interpreter.id), message)
    await publish_json(bus, lifecycle.call_channel(view.id), message)


async def announce_ending(bus: Bus, presence: PresenceNews, ending: Ending, view: CallView) -> None:
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
        await presence.changed(ending.call.interpreter_id, Presence.WRAP_UP)
    await publish_call(bus, view)
