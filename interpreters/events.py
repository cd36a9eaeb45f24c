"""What happens after a presence or roster change was committed: listeners (dispatch
offers queued requests) run, and counsellors' pages get fresh language figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import structlog

from infra.bus import Bus, publish_json, user_channel
from infra.clock import Clock
from infra.db import Database
from infra.outages import Unavailable
from interpreters import presence, service
from interpreters.live import LanguageBroadcaster
from interpreters.models import Presence
from interpreters.views import InterpreterView
from wire.server import PresenceUpdated

log = structlog.get_logger(__name__)

PresenceListener = Callable[[Sequence[str], Presence], Awaitable[None]]
"""Called with (interpreter ids, their new status) after a presence change was committed:
one interpreter's click, or a sweep that set many offline at once."""


class PresenceNews:
    """Announces committed presence and roster changes: each interpreter's tabs hear of their
    own status, the languages list is refreshed, and the listeners react."""

    def __init__(
        self,
        bus: Bus,
        broadcaster: LanguageBroadcaster,
        listeners: Sequence[PresenceListener] = (),
    ) -> None:
        self._bus = bus
        self._broadcaster = broadcaster
        self.listeners = list(listeners)

    async def changed(
        self, interpreter_id: str, status: Presence, reason: str | None = None
    ) -> None:
        """Announce one interpreter's committed change; call after the transaction. A
        `reason` says why Tolk changed it (`missed_offers`, ...), for their page."""
        await self.all_changed([interpreter_id], status, reason)

    async def all_changed(
        self, interpreter_ids: Sequence[str], status: Presence, reason: str | None = None
    ) -> None:
        """Announce that these interpreters all moved to `status` (committed): each hears of
        it, and the listeners and the languages list react once for all of them."""
        if not interpreter_ids:
            return
        for interpreter_id in interpreter_ids:
            log.info("presence_changed", interpreter_id=interpreter_id, status=status.value)
            news = PresenceUpdated(status=status, reason=reason)
            await publish_json(self._bus, user_channel(interpreter_id), news)
        self._broadcaster.poke()
        for listener in self.listeners:
            try:
                await listener(interpreter_ids, status)
            except Unavailable:
                log.info("presence_listener_skipped", interpreter_ids=list(interpreter_ids))
            except Exception:
                log.exception("presence_listener_failed", interpreter_ids=list(interpreter_ids))

    def roster_changed(self) -> None:
        """Announce that languages or profiles changed (admin edits, imports)."""
        self._broadcaster.poke()


async def change_own_status(
    db: Database, clock: Clock, news: PresenceNews, user_id: str, status: Presence
) -> InterpreterView:
    """An interpreter's own status switch, committed and announced (HTTP and socket alike)."""
    async with db.write() as session:
        await presence.set_own_status(session, user_id, status, clock.now())
        view = await service.own_view(session, user_id)
    await news.changed(user_id, status)
    return view
