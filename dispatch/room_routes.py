"""HTTP handlers of consultation rooms: the counsellor's room, its invitations, its
interpreter requests and its end; the guest's session; an interpreter's hand-over."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Literal

import segno
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.access import own_origin
from accounts.guests import GUEST_COOKIE
from accounts.models import Role, User
from accounts.views import Identity, OrganizationView
from calls import consultation
from calls.ending import CALL_ENDING
from calls.lifecycle import participant_call
from calls.models import CallState, Room
from dispatch import service
from dispatch.announce import PUBLISHER
from dispatch.bodies import RequestBody
from dispatch.errors import NotCancellable
from dispatch.news import News
from dispatch.room_requests import open_room_request
from dispatch.views import RequestResponse
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.errors import Conflict, Forbidden
from infra.http import json_response
from infra.openapi import PUBLIC, ApiRoutes
from interpreters.languages import pick_locale
from interpreters.service import language_names
from interpreters.views import LanguageName
from wire.rooms import GuestView, RoomView

api = ApiRoutes(tag="rooms")
COUNSELLOR = (Role.COUNSELLOR.value,)


class RoomResponse(BaseModel):
    room: RoomView


class InvitationResponse(BaseModel):
    id: str
    url: str
    """The link to give the client: `<origin>/join/<token>`."""
    token: str
    """Shown only in this answer; Tolk keeps only its SHA-256."""
    expires_at: datetime
    qr_svg_url: str


class HandoverBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(default=None, min_length=1, max_length=35)
    """Another variant of the language; the same language when left out."""
    gender: str | None = Field(default=None, min_length=1, max_length=20)
    specialization: str | None = Field(default=None, min_length=1, max_length=50)


class GuestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    language: str | None = Field(default=None, min_length=1, max_length=35)


class GuestResponse(BaseModel):
    guest: GuestView


class GuestLanguagesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=100)
    """The invitation link's token: the list is for those who hold one."""
    locale: Literal["de", "en"] | None = None
    """The page's language, for the names beside the languages' own names."""


class GuestLanguagesResponse(BaseModel):
    languages: list[LanguageName]


async def _room_response(request: web.Request, room: Room, status: int = 200) -> web.Response:
    async with request.app[DATABASE].read() as session:
        view = await consultation.room_view(session, room)
    return json_response(RoomResponse(room=view), status=status)


@api.post("/api/rooms", roles=COUNSELLOR, status=201, errors=(409,), response=RoomResponse)
async def open_room(request: web.Request, identity: Identity) -> web.Response:
    """Open a consultation room"""
    async with request.app[DATABASE].write() as session:
        user = await session.get(User, identity.user_id)
        assert user is not None
        room = await consultation.open_room(session, user, request.app[CLOCK].now())
    return await _room_response(request, room, status=201)


@api.get("/api/rooms/{room_id}", roles=(Role.COUNSELLOR.value, Role.ADMIN.value), errors=(404,))
async def get_room(request: web.Request, identity: Identity, room_id: str) -> RoomResponse:
    """A consultation room, for its counsellor"""
    async with request.app[DATABASE].read() as session:
        room = await consultation.owned_room(
            session, room_id, identity.user_id, admin=identity.role == Role.ADMIN
        )
        view = await consultation.room_view(session, room)
    return RoomResponse(room=view)


@api.post("/api/rooms/{room_id}/invitations", roles=COUNSELLOR, status=201, errors=(404, 409))
async def invite(request: web.Request, identity: Identity, room_id: str) -> InvitationResponse:
    """A single-use invitation link for the client (revokes the previous unused one)"""
    app = request.app
    async with app[DATABASE].write() as session:
        room = await consultation.open_owned_room(session, room_id, identity.user_id)
        made = await consultation.invite(
            session, room, app[CLOCK].now(), app[SETTINGS].invitation_ttl_s, _secret(app)
        )
    invitation = made.invitation
    return InvitationResponse(
        id=invitation.id,
        url=f"{own_origin(request)}/join/{made.token}",
        token=made.token,
        expires_at=invitation.expires_at,
        qr_svg_url=f"/api/rooms/{room.id}/invitations/{invitation.id}/qr.svg",
    )


def _secret(app: web.Application) -> str:
    secret = app[SETTINGS].secret_key
    assert secret is not None  # load_settings makes one when none is configured
    return secret.get_secret_value()


@api.get(
    "/api/rooms/{room_id}/invitations/{invitation_id}/qr.svg",
    roles=COUNSELLOR,
    errors=(404,),
    content_types=("image/svg+xml",),
)
async def invitation_qr(
    request: web.Request, identity: Identity, room_id: str, invitation_id: str
) -> web.Response:
    """The QR code of an invitation's link, as SVG (while it is unused)"""
    app = request.app
    async with app[DATABASE].read() as session:
        room = await consultation.owned_room(session, room_id, identity.user_id)
        invitation = await consultation.usable_invitation(
            session, room, invitation_id, app[CLOCK].now()
        )
    token = consultation.invitation_token(_secret(app), invitation.id)
    svg = io.BytesIO()
    # Drawn here, from the link alone: nothing about the room goes to another site.
    segno.make(f"{own_origin(request)}/join/{token}", error="m").save(
        svg, kind="svg", scale=6, border=2, xmldecl=False
    )
    return web.Response(
        body=svg.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


@api.post("/api/rooms/{room_id}/requests", roles=COUNSELLOR, status=201, errors=(404, 409))
async def request_into_room(
    request: web.Request, identity: Identity, room_id: str, body: RequestBody
) -> RequestResponse:
    """Ask for an interpreter into the room (the usual dispatch)"""
    app = request.app
    opened = await app[DATABASE].write_sync(
        open_room_request, room_id, body.ask(identity), now=app[CLOCK].now(), settings=app[SETTINGS]
    )
    return RequestResponse(request=await app[PUBLISHER].publish_opened(app[DATABASE], opened))


@api.post("/api/rooms/{room_id}/hangup", roles=COUNSELLOR, errors=(404,))
async def hang_up_room(request: web.Request, identity: Identity, room_id: str) -> RoomResponse:
    """End the consultation for everyone (idempotent)"""
    view = await end_room(request.app, room_id, identity.user_id)
    return RoomResponse(room=view)


async def end_room(app: web.Application, room_id: str, counsellor_id: str) -> RoomView:
    """The counsellor ends the room: segments end, guests' cookies die, everyone is told."""
    ending = app[CALL_ENDING]
    now = app[CLOCK].now()
    async with app[DATABASE].write() as session:
        room = await consultation.owned_room(session, room_id, counsellor_id)
        before = await consultation.audience(session, room.id)
        endings = await consultation.end_room(
            session, room, "hangup", now=now, wrap_up_s=app[SETTINGS].wrap_up_s, hooks=ending.hooks
        )
        views = await consultation.ending_views(session, endings or [])
        news = await _withdraw_request(app, session, room, now) if endings is not None else None
        view = await consultation.room_view(session, room)
    if news is not None:
        await app[PUBLISHER].publish(news)
    if endings is not None:
        await consultation.announce_endings(ending.bus, ending.presence, views)
        await consultation.announce_room(ending.bus, view, also=before)
    return view


async def _withdraw_request(
    app: web.Application, session: AsyncSession, room: Room, now: datetime
) -> News | None:
    """The room's request still being offered or queued is cancelled with the room."""
    if room.request_id is None:
        return None
    try:
        _, news = await service.cancel_request(
            session, room.request_id, room.counsellor_id, now, app[SETTINGS]
        )
    except NotCancellable:
        return None
    return news


class NotYourSegment(Conflict):
    code = "not_in_room"
    default_message = "Only a running segment of a consultation room can be handed over."


@api.post(
    "/api/calls/{call_id}/handover", roles=(Role.INTERPRETER.value,), status=202, errors=(404, 409)
)
async def hand_over(
    request: web.Request, identity: Identity, call_id: str, body: HandoverBody
) -> RequestResponse:
    """Hand a consultation over to another interpreter (the request is offered again)"""
    app = request.app
    async with app[DATABASE].read() as session:
        call = await participant_call(session, call_id, identity.user_id)
        if call.room_id is None or call.state == CallState.ENDED:
            raise NotYourSegment()
        room = await session.get(Room, call.room_id)
        assert room is not None
    ask = service.Ask(
        counsellor_id=room.counsellor_id,
        organization=OrganizationView(id=room.organization_id, name=""),
        language=body.language or call.language,
        wishes=service.Wishes(gender=body.gender, specialization=body.specialization),
    )
    opened = await app[DATABASE].write_sync(
        open_room_request, room.id, ask, now=app[CLOCK].now(), settings=app[SETTINGS], handover=True
    )
    return RequestResponse(request=await app[PUBLISHER].publish_opened(app[DATABASE], opened))


@api.post(
    "/api/guest/session", roles=PUBLIC, status=201, errors=(404, 409, 410), response=GuestResponse
)
async def guest_session(request: web.Request, body: GuestBody) -> web.Response:
    """A guest joins by invitation: single use; sets the guest cookie for that room"""
    app = request.app
    settings = app[SETTINGS]
    async with app[DATABASE].write() as session:
        room, guest, cookie = await consultation.admit_guest(
            session,
            body.token,
            name=body.name,
            language=body.language,
            now=app[CLOCK].now(),
            session_s=settings.session_absolute_timeout_s,
        )
        view = await consultation.room_view(session, room)
    await consultation.announce_room(app[CALL_ENDING].bus, view)
    response = json_response(
        GuestResponse(
            guest=GuestView(
                id=guest.guest_id,
                display_name=guest.display_name,
                room_id=room.id,
                language=guest.language,
            )
        ),
        status=201,
    )
    secure = settings.cookie_secure
    if secure is None:
        secure = own_origin(request).startswith("https://")
    response.set_cookie(
        GUEST_COOKIE, cookie, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    return response


@api.post("/api/guest/languages", roles=PUBLIC, errors=(404, 410))
async def guest_languages(request: web.Request, body: GuestLanguagesBody) -> GuestLanguagesResponse:
    """The roster's languages by name (no figures), for the client opening a link"""
    app = request.app
    locale = pick_locale(body.locale, request.headers.get("Accept-Language"))
    async with app[DATABASE].read() as session:
        await consultation.invited_room(session, body.token, app[CLOCK].now())
        names = await language_names(session, locale)
    return GuestLanguagesResponse(languages=names)


@api.get("/api/guest/me", roles=("guest",))
async def guest_me(identity: Identity) -> GuestResponse:
    """Who the guest is"""
    if identity.room_id is None:
        # Only a guest's cookie carries a room; a login of role guest never does.
        raise Forbidden("Only a guest invited into a room has this.")
    return GuestResponse(
        guest=GuestView(
            id=identity.user_id,
            display_name=identity.display_name,
            room_id=identity.room_id,
            language=identity.language,
        )
    )
