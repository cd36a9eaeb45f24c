"""Booked appointments: book, claim (first claim wins), give back, cancel, start, and the
news each change sends (`booking.updated`).

Services take the session, the settings and `now`, never commit, and return the news to
publish after the commit. Claiming, giving back and cancelling are each one conditional
UPDATE checked by row count, so two interpreters claiming at the same moment end with
exactly one claim (on PostgreSQL the second UPDATE waits for the first and then finds the
booking no longer open). The rules of who sees what are in `dispatch.booking_rules`; the
deadlines (reminders, escalation) are applied by `dispatch.booking_sweep`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Connection, and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Role, Site, User
from accounts.sites import site_for_user
from accounts.views import OrganizationView
from dispatch import booking_rules as rules
from dispatch import candidates as cands
from dispatch.booking_models import Booking, BookingState
from dispatch.booking_time import booked_time
from dispatch.booking_views import booking_view, load_names
from dispatch.caps import open_within_cap
from dispatch.errors import (
    BookingCancelled,
    BookingNotClaimed,
    BookingNotDue,
    BookingNotFound,
    BookingOver,
    BookingOverlaps,
    BookingStarted,
    BookingTaken,
    TooLateToGiveBack,
    UnknownLanguage,
)
from dispatch.models import InterpretationRequest
from dispatch.news import News
from dispatch.service import Ask, Opened, Wishes, checked_tag
from infra.config import Settings
from infra.db import run_on
from infra.errors import InvalidInput
from infra.ids import new_id
from interpreters.languages import base_language
from interpreters.models import Interpreter, InterpreterLanguage, InterpreterSpecialization
from wire.objects import RequestState
from wire.server import BookingReason, BookingUpdated

log = structlog.get_logger(__name__)

MAX_DAYS_AHEAD = 366
LIVE = (BookingState.OPEN, BookingState.CLAIMED)
"""The states in which a booking still waits for its appointment."""
_LIST_LIMIT = 500


@dataclass(frozen=True, slots=True)
class NewBooking:
    """What a counsellor books: a language, a local time at a site, how long, and wishes."""

    language: str
    local_start: datetime
    """Naive: the wall-clock start in the site's (or the centre's) time zone."""
    duration_min: int
    wishes: Wishes
    site_id: str | None = None
    """The appointment's site; None: the counsellor's own."""


async def booking_site(
    session: AsyncSession, counsellor_id: str, organization_id: str, site_id: str | None
) -> Site | None:
    """The site of a new booking: the one named (an active site of the counsellor's
    organisation, else 422 `unknown_site`), or the counsellor's own (None without one)."""
    if site_id is not None:
        return await site_for_user(session, site_id, organization_id)
    counsellor = await session.get(User, counsellor_id)
    if counsellor is None or counsellor.site_id is None:
        return None
    return await session.get(Site, counsellor.site_id)


def wanted(booking: Booking) -> rules.Wanted:
    """What the booking asks for, as the rules read it."""
    return rules.Wanted(
        language=booking.language,
        gender=booking.gender,
        specialization=booking.specialization,
        required=booking.preferences_required,
        widened=booking.escalated_at is not None,
    )


# -- booking --------------------------------------------------------------------------------


async def create_booking(
    session: AsyncSession,
    counsellor_id: str,
    organization_id: str,
    new: NewBooking,
    now: datetime,
    settings: Settings,
) -> tuple[Booking, News]:
    """A counsellor books an interpreter for a local time at a site (in the site's time
    zone, else the centre's); interpreters who may claim it hear of it."""
    site = await booking_site(session, counsellor_id, organization_id, new.site_id)
    start = booked_time(new.local_start, site.time_zone if site else settings.timezone)
    if start.starts_at <= now:
        raise InvalidInput(
            "The appointment starts in the past.", field="local_start", problem_code="in_the_past"
        )
    if start.starts_at > now + timedelta(days=MAX_DAYS_AHEAD):
        raise InvalidInput(
            f"Book at most {MAX_DAYS_AHEAD} days ahead.",
            field="local_start",
            problem_code="too_far_ahead",
        )
    tag = await run_on(session, checked_tag, new.language, new.wishes)
    if not await run_on(session, cands.serving_ranks, tag):
        raise UnknownLanguage(f"No interpreter in the roster speaks {tag!r}.")
    booking = Booking(
        id=new_id(),
        counsellor_id=counsellor_id,
        organization_id=organization_id,
        site_id=site.id if site else None,
        language=tag,
        **new.wishes.columns(),
        **start.columns(),
        duration_min=new.duration_min,
        state=BookingState.OPEN,
        created_at=now,
        updated_at=now,
    )
    session.add(booking)
    await session.flush()
    log.info("booking_created", booking_id=booking.id, language=tag)
    return booking, await tell(session, booking, "created", settings, seekers=True)


async def visible_booking(
    session: AsyncSession, booking_id: str, user_id: str, role: Role
) -> Booking:
    """A booking its counsellor, its interpreter, an interpreter who may claim it, or an
    admin may see; anyone else gets 404."""
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound()
    if role == Role.ADMIN or user_id in (booking.counsellor_id, booking.interpreter_id):
        return booking
    if role == Role.INTERPRETER and booking.state == BookingState.OPEN:
        seeker = await seeker_of(session, user_id)
        if seeker is not None and rules.may_claim(wanted(booking), seeker):
            return booking
    raise BookingNotFound()


async def own_bookings(
    session: AsyncSession, user_id: str, role: Role, now: datetime
) -> list[Booking]:
    """A counsellor's bookings, or those an interpreter claimed, from yesterday on."""
    owner = (
        col(Booking.counsellor_id) == user_id
        if role == Role.COUNSELLOR
        else col(Booking.interpreter_id) == user_id
    )
    result = await session.exec(
        select(Booking)
        .where(owner)
        .where(col(Booking.state) != BookingState.CANCELLED.value)
        .where(col(Booking.starts_at) >= now - timedelta(days=1))
        .order_by(col(Booking.starts_at), col(Booking.id))
        .limit(_LIST_LIMIT)
    )
    return list(result)


async def open_bookings_for(
    session: AsyncSession, interpreter_id: str, now: datetime
) -> list[Booking]:
    """The open bookings an interpreter may claim, soonest first."""
    seeker = await seeker_of(session, interpreter_id)
    if seeker is None or not seeker.tags:
        return []
    result = await session.exec(
        select(Booking)
        .where(col(Booking.state) == BookingState.OPEN.value)
        .where(col(Booking.starts_at) > now)
        .where(_same_base_as(seeker.tags))
        # A colleague who interprets in the house never interprets their own appointment.
        .where(col(Booking.counsellor_id) != interpreter_id)
        .order_by(col(Booking.starts_at), col(Booking.id))
        .limit(_LIST_LIMIT)
    )
    return [b for b in result if rules.may_claim(wanted(b), seeker)]


async def unclaimed_bookings(session: AsyncSession, now: datetime) -> list[Booking]:
    """Escalated bookings still unclaimed ("Unbesetzte Termine"), soonest first."""
    result = await session.exec(
        select(Booking)
        .where(col(Booking.state) == BookingState.OPEN.value)
        .where(col(Booking.escalated_at).is_not(None))
        .where(col(Booking.starts_at) > now - timedelta(hours=1))
        .order_by(col(Booking.starts_at), col(Booking.id))
        .limit(_LIST_LIMIT)
    )
    return list(result)


def _same_base_as(tags: Any) -> ColumnElement[bool]:
    """Bookings whose language shares a base language with one of `tags` (a superset of
    those the rules let the interpreter claim, decided in Python)."""
    language = col(Booking.language)
    terms: list[ColumnElement[bool]] = []
    for base in sorted({base_language(t) for t in tags}):
        terms.append(or_(language == base, and_(language >= base + "-", language < base + ".")))
    return or_(*terms)


async def seeker_of(session: AsyncSession, interpreter_id: str) -> rules.Seeker | None:
    """An active interpreter's languages, gender and specialisations; None for anyone else."""
    profile = await session.get(Interpreter, interpreter_id)
    if profile is None or not profile.active:
        return None
    tags = await session.exec(
        select(InterpreterLanguage.tag).where(
            col(InterpreterLanguage.interpreter_id) == interpreter_id
        )
    )
    specs = await session.exec(
        select(InterpreterSpecialization.specialization).where(
            col(InterpreterSpecialization.interpreter_id) == interpreter_id
        )
    )
    return rules.Seeker(tags=set(tags), gender=profile.gender, specializations=set(specs))


# -- claiming, giving back, cancelling --------------------------------------------------------


async def guarded(
    session: AsyncSession, booking: Booking, *conditions: ColumnElement[bool], **values: Any
) -> bool:
    """UPDATE the booking only if `conditions` hold; True if it moved (then read fresh)."""
    result = await session.exec(
        update(Booking)
        .where(col(Booking.id) == booking.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(booking)
    return result.rowcount == 1


async def claim_booking(
    session: AsyncSession, booking_id: str, interpreter_id: str, now: datetime, settings: Settings
) -> tuple[Booking, News]:
    """An interpreter claims an open booking: the first claim wins, a later one is 409
    `booking_taken`."""
    booking = await session.get(Booking, booking_id)
    if booking is None:
        raise BookingNotFound()
    if booking.interpreter_id == interpreter_id and booking.state == BookingState.CLAIMED:
        return booking, News()  # a repeated click
    # Whether the interpreter could claim it at all, whatever its state: a claim that lost
    # the race is told so (409), a booking of another language stays unknown (404).
    seeker = await seeker_of(session, interpreter_id)
    mine = booking.counsellor_id == interpreter_id  # an in-house colleague's own booking
    if seeker is None or mine or not rules.may_claim(wanted(booking), seeker):
        raise BookingNotFound()
    await _check_free_at(session, booking, interpreter_id)
    won = await guarded(
        session,
        booking,
        col(Booking.state) == BookingState.OPEN.value,
        col(Booking.starts_at) > now,
        state=BookingState.CLAIMED.value,
        interpreter_id=interpreter_id,
        claimed_at=now,
        updated_at=now,
    )
    if not won:
        if booking.interpreter_id == interpreter_id and booking.state == BookingState.CLAIMED:
            return booking, News()
        raise _not_open_error(booking, now)
    log.info("booking_claimed", booking_id=booking.id, interpreter_id=interpreter_id)
    return booking, await tell(session, booking, "claimed", settings, seekers=True)


def _not_open_error(booking: Booking, now: datetime) -> Exception:
    if booking.state == BookingState.CANCELLED:
        return BookingCancelled()
    if booking.state == BookingState.STARTED:
        return BookingStarted()
    if booking.state == BookingState.OPEN and booking.starts_at <= now:
        return BookingOver()
    return BookingTaken()


async def _check_free_at(session: AsyncSession, booking: Booking, interpreter_id: str) -> None:
    """Refuse a claim that overlaps another booking the interpreter holds."""
    held = await session.exec(
        select(Booking)
        .where(col(Booking.interpreter_id) == interpreter_id)
        .where(col(Booking.state) == BookingState.CLAIMED.value)
        .where(col(Booking.id) != booking.id)
        .where(col(Booking.starts_at) < booking.starts_at + timedelta(days=1))
        .where(col(Booking.starts_at) > booking.starts_at - timedelta(days=1))
    )
    for other in held:
        if rules.overlaps(
            booking.starts_at, booking.duration_min, other.starts_at, other.duration_min
        ):
            raise BookingOverlaps(booking_id=other.id)


async def give_back_booking(
    session: AsyncSession, booking_id: str, interpreter_id: str, now: datetime, settings: Settings
) -> tuple[Booking, News]:
    """The claiming interpreter gives a booking back before the cut-off: it is open again."""
    booking = await session.get(Booking, booking_id)
    if booking is None or booking.interpreter_id != interpreter_id:
        raise BookingNotFound()
    cut_off = now + timedelta(seconds=settings.booking_give_back_before_s)
    moved = await guarded(
        session,
        booking,
        col(Booking.state) == BookingState.CLAIMED.value,
        col(Booking.interpreter_id) == interpreter_id,
        col(Booking.starts_at) >= cut_off,
        state=BookingState.OPEN.value,
        interpreter_id=None,
        claimed_at=None,
        updated_at=now,
    )
    if not moved:
        if booking.state == BookingState.STARTED:
            raise BookingStarted()
        if booking.state != BookingState.CLAIMED or booking.interpreter_id != interpreter_id:
            raise BookingNotClaimed()
        raise TooLateToGiveBack(
            give_back_until=rules.give_back_until(
                booking.starts_at, settings.booking_give_back_before_s
            ).isoformat()
        )
    log.info("booking_given_back", booking_id=booking.id, interpreter_id=interpreter_id)
    return booking, await tell(
        session, booking, "given_back", settings, seekers=True, also=[interpreter_id]
    )


async def _counsellors_booking(
    session: AsyncSession, booking_id: str, counsellor_id: str, *, lock: bool = False
) -> Booking:
    """The counsellor's own booking (`lock`: read afresh and locked until the transaction
    ends); another's is BookingNotFound, as if it did not exist."""
    booking = await session.get(Booking, booking_id, with_for_update=lock, populate_existing=lock)
    if booking is None or booking.counsellor_id != counsellor_id:
        raise BookingNotFound()
    return booking


async def cancel_booking(
    session: AsyncSession, booking_id: str, counsellor_id: str, now: datetime, settings: Settings
) -> tuple[Booking, News]:
    """The counsellor cancels a booking that has not started; cancelling twice is no error."""
    booking = await _counsellors_booking(session, booking_id, counsellor_id)
    was_open = booking.state == BookingState.OPEN
    live = col(Booking.state).in_([s.value for s in LIVE])
    if not await guarded(
        session, booking, live, state=BookingState.CANCELLED.value, updated_at=now
    ):
        if booking.state == BookingState.CANCELLED:
            return booking, News()
        raise BookingStarted()
    log.info("booking_cancelled", booking_id=booking.id)
    return booking, await tell(session, booking, "cancelled", settings, seekers=was_open)


# -- the appointment ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """A booking whose appointment started: the request made from it, and the news."""

    booking: Booking
    opened: Opened
    news: News


async def start_booking(
    session: AsyncSession,
    booking_id: str,
    counsellor_id: str,
    organization: OrganizationView,
    now: datetime,
    settings: Settings,
) -> Started:
    """The counsellor starts the appointment: a request is made from the booking, offered
    first to the interpreter who claimed it (alone, if free), then to the usual waves."""
    booking = await _counsellors_booking(session, booking_id, counsellor_id, lock=True)
    if booking.state == BookingState.CANCELLED:
        raise BookingCancelled()
    if booking.request_id is not None and await _asked_or_answered(session, booking.request_id):
        raise BookingStarted()  # one appointment, one request (and one interpreter billed)
    if not rules.may_start(
        booking.starts_at, booking.duration_min, now, settings.booking_start_early_s
    ):
        raise BookingNotDue(starts_at=booking.starts_at.isoformat())
    was_open = booking.state == BookingState.OPEN
    opened = await run_on(session, _open_request_of, booking, organization, now, settings)
    await guarded(
        session,
        booking,
        state=BookingState.STARTED.value,
        request_id=opened.request.id,
        updated_at=now,
    )
    log.info("booking_started", booking_id=booking.id, request_id=opened.request.id)
    news = await tell(session, booking, "started", settings, seekers=was_open)
    return Started(booking, opened, news)


async def _asked_or_answered(session: AsyncSession, request_id: str) -> bool:
    """Whether a booking's request is still being offered or was accepted; only one that
    ended without a call (cancelled, expired, failed) lets the appointment start again."""
    state = (
        await session.exec(
            select(InterpretationRequest.state).where(col(InterpretationRequest.id) == request_id)
        )
    ).first()
    return state in (RequestState.QUEUED, RequestState.OFFERING, RequestState.ACCEPTED)


def _open_request_of(
    conn: Connection,
    booking: Booking,
    organization: OrganizationView,
    now: datetime,
    settings: Settings,
) -> Opened:
    """The request of a booking's appointment, within the counsellor's open requests."""
    wishes = Wishes(
        gender=booking.gender,
        specialization=booking.specialization,
        audio_only=booking.audio_only,
        required=booking.preferences_required,
    )
    ask = Ask(booking.counsellor_id, organization, booking.language, wishes, booking.site_id)
    return open_within_cap(
        conn,
        ask,
        limit=settings.open_requests_per_counsellor,
        now=now,
        settings=settings,
        first=booking.interpreter_id,
    )


# -- news -------------------------------------------------------------------------------------


async def tell(
    session: AsyncSession,
    booking: Booking,
    reason: BookingReason,
    settings: Settings,
    *,
    seekers: bool = False,
    also: list[str] | None = None,
) -> News:
    """The news of a change: `booking.updated` to its counsellor, its interpreter (and
    `also`), the admins once it is escalated, and with `seekers` to every interpreter who
    may claim it (or could before this change), who are not told who claimed it."""
    news = News()
    names = await load_names(session, [booking])
    before_s = settings.booking_give_back_before_s
    full = BookingUpdated(booking=booking_view(booking, names, before_s), reason=reason)
    told = {booking.counsellor_id, *(also or [])}
    if booking.interpreter_id is not None:
        told.add(booking.interpreter_id)
    for user_id in sorted(told):
        news.tell(user_id, full)
    if booking.escalated_at is not None:
        for admin_id in await _admins(session):
            if admin_id not in told:
                news.tell(admin_id, full)
    if seekers:
        partial = BookingUpdated(
            booking=booking_view(booking, names, before_s, full=False), reason=reason
        )
        for interpreter_id in await _seekers(session, booking):
            if interpreter_id not in told:
                news.tell(interpreter_id, partial)
    return news


async def _admins(session: AsyncSession) -> list[str]:
    result = await session.exec(
        select(User.id).where(col(User.role) == Role.ADMIN.value).where(col(User.active))
    )
    return list(result)


async def _seekers(session: AsyncSession, booking: Booking) -> list[str]:
    """Active interpreters who may claim the booking as it is asked for (open or not)."""
    rows = await session.exec(
        select(col(InterpreterLanguage.interpreter_id), col(InterpreterLanguage.tag))
        .join(Interpreter, col(Interpreter.user_id) == col(InterpreterLanguage.interpreter_id))
        .where(col(Interpreter.active))
        .where(_tag_of_base(base_language(booking.language)))
    )
    tags: dict[str, set[str]] = {}
    for interpreter_id, tag in rows:
        tags.setdefault(interpreter_id, set()).add(tag)
    want = wanted(booking)
    found = [i for i, t in tags.items() if rules.serves(want, t)]
    if not (booking.gender or booking.specialization) or (want.widened and not want.required):
        return sorted(found)
    return [i for i in sorted(found) if await _meets(session, want, i)]


async def _meets(session: AsyncSession, want: rules.Wanted, interpreter_id: str) -> bool:
    seeker = await seeker_of(session, interpreter_id)
    return seeker is not None and rules.meets_wishes(want, seeker)


def _tag_of_base(base: str) -> ColumnElement[bool]:
    tag = col(InterpreterLanguage.tag)
    return or_(tag == base, and_(tag >= base + "-", tag < base + "."))
