"""HTTP handlers of calls: GET one, hang up."""

from __future__ import annotations

from aiohttp import web

from accounts.models import REQUESTERS, Role
from accounts.views import Identity
from calls import lifecycle
from calls.ending import CALL_ENDING
from calls.views import CallResponse, load_call_view
from infra.appkeys import DATABASE
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="calls")
PARTICIPANTS = (*REQUESTERS, Role.INTERPRETER)


@api.get("/api/calls/{call_id}", roles=(*PARTICIPANTS, Role.ADMIN), errors=(404,))
async def get_call(request: web.Request, identity: Identity, call_id: str) -> CallResponse:
    """A call, for its participants"""
    async with request.app[DATABASE].read() as session:
        call = await lifecycle.participant_call(
            session, call_id, identity.user_id, admin=identity.role == Role.ADMIN
        )
        view = await load_call_view(session, call)
    return CallResponse(call=view)


@api.post("/api/calls/{call_id}/hangup", roles=PARTICIPANTS, errors=(404,))
async def hangup_call(request: web.Request, identity: Identity, call_id: str) -> CallResponse:
    """Hang up (idempotent: an ended call is returned as it is)"""
    view, _ = await request.app[CALL_ENDING].hang_up(call_id, identity.user_id)
    return CallResponse(call=view)
