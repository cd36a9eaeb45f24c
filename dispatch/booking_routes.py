"""HTTP handlers of bookings: counsellors book, cancel and start; interpreters see the open
ones of their languages, claim and give back; admins see the unclaimed ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Role
from accounts.views import Identity, OrganizationView
from dispatch import bookings
from dispatch.announce import PUBLISHER
from dispatch.bodies import PreferencesBody
from dispatch.booking_models import Booking
from dispatch.booking_time import parse_local
from dispatch.booking_views import BookingResponse, BookingsResponse, load_views
from dispatch.news import News
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.config import Settings
from infra.openapi import ApiRoutes
from wire.objects import BookingView, RequestView

api = ApiRoutes(tag="dispatch")


class BookingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: str = Field(min_length=1, max_length=35)
    local_start: str = Field(min_length=16, max_length=16)
    """The wall-clock start in the site's (or the centre's) time zone, `2026-03-29T10:30`."""
    duration_min: int = Field(ge=15, le=480)
    preferences: PreferencesBody = Field(default_factory=PreferencesBody)
    site_id: str | None = Field(default=None, min_length=1, max_length=32)
    """A site of the counsellor's organisation; default: the counsellor's own."""


class StartedResponse(BaseModel):
    booking: BookingView
    request: RequestView


async def _answer(app: web.Application, booking: Booking, *, full: bool = True) -> BookingResponse:
    """The booking as its caller sees it (`full`: with its interpreter and give-back time)."""
    async with app[DATABASE].read() as session:
        (view,) = await load_views(
            session, [booking], app[SETTINGS].booking_give_back_before_s, full=full
        )
    return BookingResponse(booking=view)


Finder = Callable[[AsyncSession, datetime], Awaitable[list[Booking]]]


async def _listed(app: web.Application, find: Finder, *, full: bool) -> BookingsResponse:
    """The bookings `find` reads now, as their caller sees them (`full` as in `_answer`)."""
    async with app[DATABASE].read() as session:
        found = await find(session, app[CLOCK].now())
        views = await load_views(
            session, found, app[SETTINGS].booking_give_back_before_s, full=full
        )
    return BookingsResponse(bookings=views)


@api.post("/api/bookings", roles=(Role.COUNSELLOR,), status=201)
async def create_booking(
    request: web.Request, identity: Identity, body: BookingBody
) -> BookingResponse:
    """Book an interpreter for an appointment"""
    app = request.app
    new = bookings.NewBooking(
        language=body.language,
        local_start=parse_local(body.local_start),
        duration_min=body.duration_min,
        wishes=body.preferences.wishes(),
        site_id=body.site_id,
    )
    async with app[DATABASE].write() as session:
        booking, news = await bookings.create_booking(
            session,
            identity.user_id,
            identity.organization_id,
            new,
            app[CLOCK].now(),
            app[SETTINGS],
        )
    await app[PUBLISHER].publish(news)
    return await _answer(app, booking)


@api.get("/api/bookings", roles=(Role.COUNSELLOR, Role.INTERPRETER))
async def own_bookings(request: web.Request, identity: Identity) -> BookingsResponse:
    """Own bookings: a counsellor's, or those an interpreter claimed"""
    return await _listed(
        request.app,
        lambda session, now: bookings.own_bookings(session, identity.user_id, identity.role, now),
        full=True,
    )


@api.get("/api/bookings/open", roles=(Role.INTERPRETER,))
async def open_bookings(request: web.Request, identity: Identity) -> BookingsResponse:
    """Open bookings the interpreter may claim (their languages and variants)"""
    return await _listed(
        request.app,
        lambda session, now: bookings.open_bookings_for(session, identity.user_id, now),
        full=False,
    )


@api.get("/api/admin/bookings/unclaimed", roles=(Role.ADMIN,))
async def unclaimed_bookings(request: web.Request, identity: Identity) -> BookingsResponse:
    """Bookings still unclaimed when they escalated (Unbesetzte Termine)"""
    return await _listed(request.app, bookings.unclaimed_bookings, full=True)


@api.get(
    "/api/bookings/{booking_id}",
    roles=(Role.COUNSELLOR, Role.INTERPRETER, Role.ADMIN),
    errors=(404,),
)
async def get_booking(request: web.Request, identity: Identity, booking_id: str) -> BookingResponse:
    """A booking: its counsellor's, its interpreter's, one an interpreter may claim"""
    async with request.app[DATABASE].read() as session:
        booking = await bookings.visible_booking(
            session, booking_id, identity.user_id, identity.role
        )
    full = identity.role != Role.INTERPRETER or booking.interpreter_id == identity.user_id
    return await _answer(request.app, booking, full=full)


Change = Callable[[AsyncSession, str, str, datetime, Settings], Awaitable[tuple[Booking, News]]]


async def _change(
    app: web.Application, change: Change, booking_id: str, identity: Identity, *, full: bool = True
) -> BookingResponse:
    """Run one change of a booking by its caller in a transaction, then tell and answer."""
    async with app[DATABASE].write() as session:
        booking, news = await change(
            session, booking_id, identity.user_id, app[CLOCK].now(), app[SETTINGS]
        )
    await app[PUBLISHER].publish(news)
    return await _answer(app, booking, full=full)


@api.delete("/api/bookings/{booking_id}", roles=(Role.COUNSELLOR,), errors=(404, 409))
async def cancel_booking(
    request: web.Request, identity: Identity, booking_id: str
) -> BookingResponse:
    """Cancel a booking that has not started"""
    return await _change(request.app, bookings.cancel_booking, booking_id, identity)


@api.post("/api/bookings/{booking_id}/claim", roles=(Role.INTERPRETER,), errors=(404, 409))
async def claim_booking(
    request: web.Request, identity: Identity, booking_id: str
) -> BookingResponse:
    """Claim an open booking (the first claim wins)"""
    return await _change(request.app, bookings.claim_booking, booking_id, identity)


@api.post("/api/bookings/{booking_id}/give-back", roles=(Role.INTERPRETER,), errors=(404, 409))
async def give_back_booking(
    request: web.Request, identity: Identity, booking_id: str
) -> BookingResponse:
    """Give a claimed booking back before the cut-off"""
    return await _change(request.app, bookings.give_back_booking, booking_id, identity, full=False)


@api.post(
    "/api/bookings/{booking_id}/start", roles=(Role.COUNSELLOR,), status=201, errors=(404, 409)
)
async def start_booking(
    request: web.Request, identity: Identity, booking_id: str
) -> StartedResponse:
    """Start the appointment: a request, offered first to the booked interpreter"""
    app = request.app
    db = app[DATABASE]
    organization = OrganizationView(id=identity.organization_id, name=identity.organization_name)
    async with db.write() as session:
        started = await bookings.start_booking(
            session, booking_id, identity.user_id, organization, app[CLOCK].now(), app[SETTINGS]
        )
    view = await app[PUBLISHER].publish_opened(db, started.opened, also=started.news)
    answer = await _answer(app, started.booking)
    return StartedResponse(booking=answer.booking, request=view)
