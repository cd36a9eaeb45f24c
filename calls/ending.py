"""Ending calls: a participant's hang-up (HTTP and socket alike), and the sweep job that
ends lost and failed calls on every instance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from calls import lifecycle
from calls.announce import announce_ending
from calls.hooks import CallEndedHook
from calls.views import load_call_view
from infra.bus import Bus
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from interpreters.events import PresenceNews
from wire.objects import CallView

STALE_PRESENCE_HEARTBEATS = 10


@dataclass(frozen=True)
class CallEnding:
    """Ends calls with what that takes: each ending runs the hooks in its transaction
    (billing records usage) and is announced once committed."""

    db: Database
    clock: Clock
    settings: Settings
    bus: Bus
    presence: PresenceNews
    hooks: Sequence[CallEndedHook]

    async def hang_up(self, call_id: str, user_id: str) -> tuple[CallView, bool]:
        """End a call for one of its participants and tell everyone; True when this ended it
        (hanging up an ended call returns it unchanged)."""
        now = self.clock.now()
        async with self.db.write() as session:
            call, ending = await lifecycle.hang_up(
                session,
                call_id,
                user_id,
                now=now,
                wrap_up_s=self.settings.wrap_up_s,
                hooks=self.hooks,
            )
            view = await load_call_view(session, call)
        if ending is not None:
            await announce_ending(self.bus, self.presence, ending, view)
        return view, ending is not None

    async def sweep(self) -> list[CallView]:
        """End every call that is due: `failed` past its connect deadline, `lost` after the
        rejoin grace with nobody seen. Runs on every instance; the guarded ends make it safe."""
        settings = self.settings
        now = self.clock.now()
        ended: list[CallView] = []
        stale_before = now - timedelta(seconds=STALE_PRESENCE_HEARTBEATS * settings.ws_heartbeat_s)
        async with self.db.read() as session:
            due = await lifecycle.due_calls(
                session,
                now,
                rejoin_grace_s=settings.call_rejoin_grace_s,
                connect_timeout_s=settings.call_connect_timeout_s,
            )
            stale = await lifecycle.stale_presence_exists(session, stale_before)
        if stale:
            async with self.db.write() as session:
                # Rows of an instance that died without saying goodbye.
                await lifecycle.purge_stale_presence(session, stale_before)
        for call_id in due:
            view = await self._end_due(call_id, now)
            if view is not None:
                ended.append(view)
        return ended

    async def _end_due(self, call_id: str, now: datetime) -> CallView | None:
        settings = self.settings
        async with self.db.write() as session:
            ending = await lifecycle.end_due_call(
                session,
                call_id,
                now,
                rejoin_grace_s=settings.call_rejoin_grace_s,
                connect_timeout_s=settings.call_connect_timeout_s,
                wrap_up_s=settings.wrap_up_s,
                hooks=self.hooks,
            )
            view = await load_call_view(session, ending.call) if ending else None
        if ending is None or view is None:
            return None
        await announce_ending(self.bus, self.presence, ending, view)
        return view


CALL_ENDING = web.AppKey("call_ending", CallEnding)
