"""HTTP handlers of calls: GET one, hang up."""

from __future__ import annotations

from aiohttp import web

from accounts.models import REQUESTERS, Role
from accounts.views import Identity
from calls import lifecycle
from calls.ending import CALL_ENDING
from calls.views import CallResponse, load_call_view
from infra.appkeys import DATABASE
from infra.http import json_response
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="calls")
PARTICIPANTS = (*REQUESTERS, Role.INTERPRETER)


@api.get(
    "/api/calls/{call_id}",
    summary="A call, for its participants",
    response=CallResponse,
    roles=(*PARTICIPANTS, Role.ADMIN),
    errors=(404,),
)
async def get_call(request: web.Request, identity: Identity) -> web.Response:
    async with request.app[DATABASE].read() as session:
        call = await lifecycle.participant_call(
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
async def hangup_call(request: web.Request, identity: Identity) -> web.Response:
    view, _ = await request.app[CALL_ENDING].hang_up(
        request.match_info["call_id"], identity.user_id
    )
    return json_response(CallResponse(call=view))
