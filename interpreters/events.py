"""What happens after a presence or roster change was committed: listeners (dispatch
offers queued requests) run, and counsellors' pages get fresh language figures."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from aiohttp import web

from infra.appkeys import BUS
from infra.bus import publish_json, user_channel
from infra.outages import Unavailable
from interpreters.keys import LANGUAGE_BROADCASTER, PRESENCE_LISTENERS
from interpreters.models import Presence

log = structlog.get_logger(__name__)


async def presence_changed(app: web.Application, interpreter_id: str, status: Presence) -> None:
    """Announce a committed presence change; call after the transaction, never inside it."""
    await presences_changed(app, [interpreter_id], status)


async def presences_changed(
    app: web.Application, interpreter_ids: Sequence[str], status: Presence
) -> None:
    """Announce that these interpreters all moved to `status` (committed): each hears of
    it, and the listeners and the languages list react once for all of them."""
    if not interpreter_ids:
        return
    for interpreter_id in interpreter_ids:
        log.info("presence_changed", interpreter_id=interpreter_id, status=status.value)
        await publish_json(
            app[BUS],
            user_channel(interpreter_id),
            {"type": "presence.updated", "status": status.value},
        )
    app[LANGUAGE_BROADCASTER].poke()
    for listener in app[PRESENCE_LISTENERS]:
        try:
            await listener(app, interpreter_ids, status)
        except Unavailable:
            log.info("presence_listener_skipped", interpreter_ids=list(interpreter_ids))
        except Exception:
            log.exception("presence_listener_failed", interpreter_ids=list(interpreter_ids))


def roster_changed(app: web.Application) -> None:
    """Announce that languages or profiles changed (admin edits, imports)."""
    app[LANGUAGE_BROADCASTER].poke()
