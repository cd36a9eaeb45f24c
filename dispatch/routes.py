"""HTTP handlers of dispatch: requests (counsellors) and offers (interpreters)."""

from __future__ import annotations

from aiohttp import web

from accounts.models import REQUESTERS, Role
from accounts.views import Identity
from calls import lifecycle
from calls.views import CallResponse
from dispatch import service
from dispatch.announce import PUBLISHER
from dispatch.bodies import RequestBody
from dispatch.caps import open_within_cap
from dispatch.queue import current_view
from dispatch.views import RequestResponse, TodayResponse, TodayView
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="dispatch")


@api.post("/api/requests", roles=REQUESTERS, status=201, errors=(409,))
async def create_request(
    request: web.Request, identity: Identity, body: RequestBody
) -> RequestResponse:
    """Ask for an interpreter"""
    app = request.app
    opened = await app[DATABASE].write_sync(
        open_within_cap,
        body.ask(identity),
        limit=app[SETTINGS].open_requests_per_counsellor,
        now=app[CLOCK].now(),
        settings=app[SETTINGS],
    )
    return RequestResponse(request=await app[PUBLISHER].publish_opened(app[DATABASE], opened))


@api.get("/api/requests/{request_id}", roles=(*REQUESTERS, Role.ADMIN), errors=(404,))
async def get_request(request: web.Request, identity: Identity, request_id: str) -> RequestResponse:
    """A request and its state"""
    async with request.app[DATABASE].read() as session:
        req = await service.get_request(session, request_id, identity.user_id, identity.role)
        view = await current_view(session, req)
    return RequestResponse(request=view)


@api.delete("/api/requests/{request_id}", roles=REQUESTERS, errors=(404, 409))
async def cancel_request(
    request: web.Request, identity: Identity, request_id: str
) -> RequestResponse:
    """Cancel a request that is queued or being offered"""
    app = request.app
    async with app[DATABASE].write() as session:
        req, news = await service.cancel_request(
            session, request_id, identity.user_id, app[CLOCK].now(), app[SETTINGS]
        )
        view = await current_view(session, req)
    await app[PUBLISHER].publish(news)
    return RequestResponse(request=view)


@api.post("/api/offers/{offer_id}/accept", roles=(Role.INTERPRETER,), errors=(404, 409))
async def accept_offer(request: web.Request, identity: Identity, offer_id: str) -> CallResponse:
    """Take an offered request: the call is created"""
    app = request.app
    async with app[DATABASE].write() as session:
        view, news = await service.accept_offer(
            session, offer_id, identity.user_id, app[CLOCK].now(), app[SETTINGS]
        )
    await app[PUBLISHER].publish(news)
    return CallResponse(call=view)


@api.post(
    "/api/offers/{offer_id}/decline", roles=(Role.INTERPRETER,), status=204, errors=(404, 409)
)
async def decline_offer(request: web.Request, identity: Identity, offer_id: str) -> None:
    """Decline an offer"""
    app = request.app
    async with app[DATABASE].write() as session:
        news = await service.decline_offer(
            session, offer_id, identity.user_id, app[CLOCK].now(), app[SETTINGS]
        )
    await app[PUBLISHER].publish(news)


@api.get("/api/interpreters/me/today", roles=(Role.INTERPRETER,))
async def own_today(request: web.Request, identity: Identity) -> TodayResponse:
    """Own calls today (since midnight in the configured time zone) and time in them"""
    app = request.app
    async with app[DATABASE].read() as session:
        count, talk_s = await lifecycle.interpreter_today(
            session, identity.user_id, app[CLOCK].now(), app[SETTINGS].timezone
        )
    return TodayResponse(today=TodayView(calls=count, talk_s=talk_s))
