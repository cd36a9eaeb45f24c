"""HTTP handlers of calls (GET one, hang up), the news every call change sends, and the
sweep job that ends lost and failed calls on every instance."""

from __future__ import annotations

from datetime import timedelta

import structlog
from aiohttp import web
from pydantic import BaseModel

from accounts.access import require_user
from accounts.models import Role
from dispatch import calls
from dispatch.calls import Ending
from dispatch.hooks import CALL_ENDED_HOOKS, CallEndedHook
from dispatch.views import CallView, load_call_view
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import publish_json, user_channel
from infra.http import json_response
from infra.openapi import ApiRoutes
from interpreters.events import presence_changed
from interpreters.models import Presence

log = structlog.get_logger(__name__)

api = ApiRoutes(tag="calls")
STALE_PRESENCE_HEARTBEATS = 10
PARTICIPANTS = (Role.COUNSELLOR.value, Role.INTERPRETER.value)


class CallResponse(BaseModel):
    call: CallView


def call_ended_hooks(app: web.Application) -> list[CallEndedHook]:
    """The hooks every call ending runs in its transaction (billing records usage)."""
    hooks: list[CallEndedHook] = app[CALL_ENDED_HOOKS]
    return hooks


async def publish_call(app: web.Application, view: CallView) -> None:
    """`call.updated` to both participants, and to the call's room on every instance."""
    message = {"type": "call.updated", "call": view}
    bus = app[BUS]
    await publish_json(bus, user_channel(view.counsellor.id), message)
    await publish_json(bus, user_channel(view.interpreter.id), message)
    await publish_json(bus, calls.call_channel(view.id), message)


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


async def hang_up(app: web.Application, call_id: str, user_id: str) -> tuple[CallView, bool]:
    """End a call for one of its participants and tell everyone; True when this ended it
    (hanging up an ended call returns it unchanged)."""
    now = app[CLOCK].now()
    async with app[DATABASE].write() as session:
        call, ending = await calls.hang_up(
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


@api.get(
    "/api/calls/{call_id}",
    summary="A call, for its participants",
    response=CallResponse,
    roles=(*PARTICIPANTS, Role.ADMIN.value),
    errors=(404,),
)
async def get_call(request: web.Request) -> web.Response:
    identity = await require_user(request, Role.COUNSELLOR, Role.INTERPRETER, Role.ADMIN)
    async with request.app[DATABASE].read() as session:
        call = await calls.participant_call(
            session,
            request.match_info["call_id"],
            identity.user_id,
            admin=identity.role == Role.ADMIN,
        )
        view = await load_call_view(session, call)
    return json_response(CallResponse(call=view))


@api.post(
    "/api/calls/{call_id}/hangup",
    summary="Hang up (idempotent: an ended call is returned as it is)",
    response=CallResponse,
    roles=PARTICIPANTS,
    errors=(404,),
)
async def hangup_call(request: web.Request) -> web.Response:
    identity = await require_user(request, Role.COUNSELLOR, Role.INTERPRETER)
    view, _ = await hang_up(request.app, request.match_info["call_id"], identity.user_id)
    return json_response(CallResponse(call=view))


async def sweep_calls(app: web.Application) -> list[CallView]:
    """End every call that is due: `failed` past its connect deadline, `lost` after the
    rejoin grace with nobody seen. Runs on every instance; the guarded ends make it safe."""
    settings = app[SETTINGS]
    db = app[DATABASE]
    now = app[CLOCK].now()
    ended: list[CallView] = []
    stale_before = now - timedelta(seconds=STALE_PRESENCE_HEARTBEATS * settings.ws_heartbeat_s)
    async with db.read() as session:
        due = await calls.due_calls(
            session,
            now,
            rejoin_grace_s=settings.call_rejoin_grace_s,
            connect_timeout_s=settings.call_connect_timeout_s,
        )
        stale = await calls.stale_presence_exists(session, stale_before)
    if stale:
        async with db.write() as session:
            # Rows of an instance that died without saying goodbye.
            await calls.purge_stale_presence(session, stale_before)
    for call_id in due:
        async with db.write() as session:
            ending = await calls.end_due_call(
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
