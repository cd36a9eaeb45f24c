"""Ending calls with the app's resources: a participant's hang-up (HTTP and socket alike),
and the sweep job that ends lost and failed calls on every instance."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from calls import lifecycle
from calls.announce import announce_ending
from calls.hooks import CALL_ENDED_HOOKS, CallEndedHook
from calls.views import CallView, load_call_view
from infra.appkeys import CLOCK, DATABASE, SETTINGS

STALE_PRESENCE_HEARTBEATS = 10


def call_ended_hooks(app: web.Application) -> list[CallEndedHook]:
    """The hooks every call ending runs in its transaction (billing records usage)."""
    hooks: list[CallEndedHook] = app[CALL_ENDED_HOOKS]
    return hooks


async def hang_up(app: web.Application, call_id: str, user_id: str) -> tuple[CallView, bool]:
    """End a call for one of its participants and tell everyone; True when this ended it
    (hanging up an ended call returns it unchanged)."""
    now = app[CLOCK].now()
    async with app[DATABASE].write() as session:
        call, ending = await lifecycle.hang_up(
            session,
            call_id,
            user_id,
            now=now,
            wrap_up_s=app[SETTINGS].wrap_up_s,
            hooks=call_ended_hooks(app),
        )
        view = await load_call_view(session, call)
    if ending is not None:
        await announce_ending(app, ending, view)
    return view, ending is not None


async def sweep_calls(app: web.Application) -> list[CallView]:
    """End every call that is due: `failed` past its connect deadline, `lost` after the
    rejoin grace with nobody seen. Runs on every instance; the guarded ends make it safe."""
    settings = app[SETTINGS]
    db = app[DATABASE]
    now = app[CLOCK].now()
    ended: list[CallView] = []
    stale_before = now - timedelta(seconds=STALE_PRESENCE_HEARTBEATS * settings.ws_heartbeat_s)
    async with db.read() as session:
        due = await lifecycle.due_calls(
            session,
            now,
            rejoin_grace_s=settings.call_rejoin_grace_s,
            connect_timeout_s=settings.call_connect_timeout_s,
        )
        stale = await lifecycle.stale_presence_exists(session, stale_before)
    if stale:
        async with db.write() as session:
            # Rows of an instance that died without saying goodbye.
            await lifecycle.purge_stale_presence(session, stale_before)
    for call_id in due:
        async with db.write() as session:
            ending = await lifecycle.end_due_call(
                session,
                call_id,
                now,
                rejoin_grace_s=settings.call_rejoin_grace_s,
                connect_timeout_s=settings.call_connect_timeout_s,
                wrap_up_s=settings.wrap_up_s,
                hooks=call_ended_hooks(app),
            )
            view = await load_call_view(session, ending.call) if ending else None
        if ending is not None and view is not None:
            await announce_ending(app, ending, view)
            ended.append(view)
    return ended
