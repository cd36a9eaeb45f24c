"""The request and offer lifecycles: ask, offer in waves, queue, accept, decline, cancel.

Services take the session (or, on the hot path of a new request, a blocking connection run
by `Database.write_sync`), the settings and `now`, never commit, and return the news to
publish after the commit. Every transition is a guarded UPDATE checked by row count.
Locks are always taken request first, then offers, then interpreters, so that accept,
cancel, decline and the sweeper racing on PostgreSQL wait for each other instead of
deadlocking; on SQLite the write transaction (BEGIN IMMEDIATE) serialises them anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, Insert, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Organization, Role
from accounts.views import OrganizationView
from calls import consultation, lifecycle
from calls.models import Call, Room
from calls.views import load_call_view
from dispatch import candidates as cands
from dispatch import tiers_fast, wave_fast
from dispatch.errors import (
    NotAvailable,
    NotCancellable,
    OfferDeclined,
    OfferExpired,
    OfferNotFound,
    OfferRevoked,
    OfferTaken,
    RequestNotFound,
    UnknownLanguage,
)
from dispatch.models import PENDING_OFFER, InterpretationRequest, Offer, OfferState, RequestState
from dispatch.news import News
from dispatch.policy import (
    FEWEST_MINUTES_TODAY,
    next_wave,
    prefetch_limit,
    tiers_due,
    wave_deadline,
)
from dispatch.queue import current_view, record_wait, tell_queue
from dispatch.views import offer_view, request_view
from infra.config import Settings
from infra.db import Database, conflict_insert, run_on
from infra.errors import Conflict
from infra.ids import new_id
from infra.rows_fast import new_row
from interpreters.languages import UnregisteredLanguageTag, base_language, normalize_tag
from interpreters.models import (
    Interpreter,
    InterpreterLanguage,
    InterpreterSpecialization,
    Presence,
    Specialization,
)
from interpreters.presence import transition
from interpreters.service import UnknownSpecialization
from wire.objects import CallView, RequestView
from wire.server import CallUpdated, OfferMade, OfferRevocation, RequestUpdated, RoomUpdated

log = structlog.get_logger(__name__)

OPEN = (RequestState.QUEUED, RequestState.OFFERING)
_MAX_OFFER_ATTEMPTS = 3
_IDS_PER_STATEMENT = 500
"""Ids bound in one IN list (SQLite and asyncpg cap a statement's parameters)."""


@dataclass(frozen=True, slots=True)
class Wishes:
    """What a counsellor asks for besides the language."""

    gender: str | None = None
    specialization: str | None = None
    audio_only: bool = False
    required: bool = False

    def columns(self) -> dict[str, Any]:
        """The wishes as a request's or a booking's columns (a requirement needs a wish)."""
        return {
            "gender": self.gender.lower() if self.gender else None,
            "specialization": self.specialization,
            "preferences_required": self.required and bool(self.gender or self.specialization),
            "audio_only": self.audio_only,
        }


@dataclass(frozen=True, slots=True)
class Ask:
    """A counsellor's request for an interpreter, as asked."""

    counsellor_id: str
    organization: OrganizationView
    """The counsellor's organisation when asking: who is billed."""
    language: str
    wishes: Wishes
    site_id: str | None = None
    """Where the counsellor asks from (into a room: the room's site)."""
    room_id: str | None = None
    """The consultation room the interpreter is asked into, if any."""


# -- guarded transitions ------------------------------------------------------------------


def _move(
    conn: Connection,
    req: InterpretationRequest,
    from_states: tuple[RequestState, ...],
    /,
    **values: Any,
) -> bool:
    result = conn.execute(
        update(InterpretationRequest)
        .where(col(InterpretationRequest.id) == req.id)
        .where(col(InterpretationRequest.state).in_([s.value for s in from_states]))
        .values(**values)
    )
    if result.rowcount != 1:
        return False
    for key, value in values.items():
        set_committed_value(req, key, value)
    return True


async def move_request(
    session: AsyncSession,
    req: InterpretationRequest,
    from_states: tuple[RequestState, ...],
    **values: Any,
) -> bool:
    """UPDATE the request only if it is in one of `from_states`; True if it moved."""
    return await run_on(session, _move, req, from_states, **values)


async def close_pending_offers(
    session: AsyncSession,
    request_id: str,
    state: OfferState,
    reason: str | None,
    now: datetime,
) -> list[tuple[str, str]]:
    """Move every pending offer of a request to `state`; returns (offer id, interpreter id)."""
    result = await session.exec(
        update(Offer)
        .where(col(Offer.request_id) == request_id)
        .where(PENDING_OFFER)
        .values(state=state.value, reason=reason, decided_at=now)
        .returning(col(Offer.id), col(Offer.interpreter_id))
        .execution_options(synchronize_session=False)
    )
    return [(offer_id, interpreter_id) for offer_id, interpreter_id in result]


async def lock_request(session: AsyncSession, request_id: str) -> InterpretationRequest | None:
    """Read a request fresh, locking its row (PostgreSQL) for the rest of the transaction."""
    return await session.get(
        InterpretationRequest, request_id, with_for_update=True, populate_existing=True
    )


async def claim_request(
    session: AsyncSession, request_id: str, *conditions: Any
) -> InterpretationRequest | None:
    """Lock a request if it still meets `conditions` and nobody else holds it (SKIP LOCKED)."""
    result = await session.exec(
        select(InterpretationRequest)
        .where(col(InterpretationRequest.id) == request_id, *conditions)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return result.first()


# -- offering ---------------------------------------------------------------------------------


async def _organization(session: AsyncSession, req: InterpretationRequest) -> OrganizationView:
    org = await session.get(Organization, req.organization_id)
    assert org is not None  # a foreign key guarantees it
    return OrganizationView(id=req.organization_id, name=org.name)


_REQUEST_INSERT = insert(InterpretationRequest.__table__)  # type: ignore[attr-defined]


def _insert_request(conn: Connection, req: InterpretationRequest) -> None:
    # A plain INSERT compiled once: the unit of work's flush costs more than the statement.
    columns = InterpretationRequest.__table__.columns  # type: ignore[attr-defined]
    conn.execute(_REQUEST_INSERT, {c.key: getattr(req, c.key) for c in columns})


@functools.cache
def _offer_insert(dialect: str) -> Insert:
    """One INSERT for every wave: executed with many rows, SQLAlchemy sends it as one
    multi-row statement and compiles it once (a `.values(rows)` form compiles per call)."""
    table = Offer.__table__  # type: ignore[attr-defined]
    return conflict_insert(table, dialect).on_conflict_do_nothing().returning(table.c.id)


def _insert_offers(
    conn: Connection,
    req: InterpretationRequest,
    interpreter_ids: list[str],
    now: datetime,
    expires_at: datetime,
    settings: Settings,
    *,
    with_request: bool = False,
) -> list[tuple[str, str]]:
    """Insert pending offers (`with_request`: the new request first); returns (offer id,
    interpreter id) of those made. An interpreter who got another offer meanwhile is skipped.

    The partial unique index "one pending offer per interpreter" decides such a race;
    ON CONFLICT DO NOTHING makes losing it a skip instead of an aborted transaction.
    """
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "request_id": req.id,
            "interpreter_id": interpreter_id,
            "state": OfferState.PENDING.value,
            "created_at": now,
            "expires_at": expires_at,
        }
        for interpreter_id in interpreter_ids
    ]
    if with_request and rows and settings.fast_paths and conn.dialect.name == "postgresql":
        made = wave_fast.insert_with_offers(conn, req, rows)
    else:
        if with_request:
            _insert_request(conn, req)
        if not rows:
            return []
        made = {offer_id for (offer_id,) in conn.execute(_offer_insert(conn.dialect.name), rows)}
    return [(r["id"], r["interpreter_id"]) for r in rows if r["id"] in made]


def _tell_offers(
    req: InterpretationRequest,
    offers: list[tuple[str, str]],
    expires_at: datetime,
    organization: OrganizationView,
    news: News,
) -> None:
    for offer_id, interpreter_id in offers:
        news.tell(
            interpreter_id, OfferMade(offer=offer_view(offer_id, expires_at, req, organization))
        )
    news.count("offer", "sent", len(offers))
    log.info("wave_sent", request_id=req.id, language=req.language, offers=len(offers))


@dataclass(frozen=True, slots=True)
class _Wave:
    """Who is offered a request next, until when, and the farthest tier reached."""

    interpreter_ids: list[str]
    deadline: datetime
    tier: str | None


def _pick_wave(
    conn: Connection,
    req: InterpretationRequest,
    now: datetime,
    settings: Settings,
    fresh: bool,
) -> _Wave:
    """Who gets the next wave: candidates of the pool tiers due (`policy.tiers_due`), from
    the database, ordered by the policy. When nobody in those tiers is free, the next tier
    is asked at once: waiting for colleagues of whom none is there helps nobody."""
    policy = settings.matching_policy
    tiers = tiers_fast.pool_tiers(conn) if settings.fast_paths else cands.pool_tiers(conn)
    names = [t.name for t in tiers]
    reached = tiers_due(
        tiers,
        (now - req.created_at).total_seconds(),
        names.index(req.tier) + 1 if req.tier in names else 1,
    )
    while True:
        found = cands.find_candidates(
            conn,
            req,
            now,
            prefetch_limit(policy, settings.offer_wave_size),
            fresh=fresh,
            tiers=names[:reached] if len(tiers) > 1 else (),
        )
        if found or reached >= len(tiers):
            break
        reached += 1
    if policy == FEWEST_MINUTES_TODAY and found:
        minutes = cands.minutes_today(
            conn, [c.interpreter_id for c in found], now, settings.timezone
        )
        found = [replace(c, minutes_today=minutes[c.interpreter_id]) for c in found]
    return _Wave(
        [c.interpreter_id for c in next_wave(policy, found, settings.offer_wave_size)],
        wave_deadline(tiers, reached, req.created_at, now, settings.offer_timeout_s),
        names[reached - 1] if tiers else req.tier,
    )


def _offer_wave(
    conn: Connection,
    req: InterpretationRequest,
    now: datetime,
    settings: Settings,
    *,
    to: list[str] | None = None,
    new: bool = False,
) -> list[tuple[str, str]]:
    """Offer a request to its next wave of candidates, or to the interpreters `to`: the one
    way every path offers. Returns the offers made, (offer id, interpreter id); with offers
    the request is `offering` until its new wave deadline, without them it is left as it
    was. A `new` request is written here once it has a wave (its caller queues it else).

    Another request may take the candidates meanwhile (PostgreSQL): a picked wave is
    picked again, a few times.
    """
    written = not new
    offers: list[tuple[str, str]] = []
    wave = _Wave([], now + timedelta(seconds=settings.offer_timeout_s), req.tier)
    for _attempt in range(_MAX_OFFER_ATTEMPTS if to is None else 1):
        if to is None:
            wave = _pick_wave(conn, req, now, settings, not written)
        else:
            wave = replace(wave, interpreter_ids=to)
        if not wave.interpreter_ids:
            break
        if not written:
            # Written straight in the state it ends in: one statement less on the hot path.
            req.state = RequestState.OFFERING
            req.wave_deadline = wave.deadline
            req.waves = 1
            req.tier = wave.tier
        offers = _insert_offers(
            conn, req, wave.interpreter_ids, now, wave.deadline, settings, with_request=not written
        )
        written = True
        if offers:
            break
    if offers and not new:
        _move(
            conn,
            req,
            OPEN,
            state=RequestState.OFFERING,
            wave_deadline=wave.deadline,
            waves=req.waves + 1,
            tier=wave.tier,
            updated_at=now,
        )
    return offers


async def _offer_and_tell(
    session: AsyncSession,
    req: InterpretationRequest,
    now: datetime,
    settings: Settings,
    news: News,
    to: list[str] | None = None,
) -> bool:
    """Offer an open request (locked by the caller) to its next wave, or to `to`, and tell
    the interpreters, its counsellor and its queue; False when nobody could be offered."""
    was_queued = req.state == RequestState.QUEUED
    # A wave after a wave: the earlier one was declined or rang out, which the counsellor
    # is told ("not accepted, asking others").
    later_wave = req.waves > 0
    offers = await run_on(session, _offer_wave, req, now, settings, to=to)
    if not offers:
        return False
    assert req.wave_deadline is not None
    _tell_offers(req, offers, req.wave_deadline, await _organization(session, req), news)
    if was_queued or later_wave:
        news.tell(req.counsellor_id, RequestUpdated(request=await current_view(session, req)))
    if was_queued:
        await tell_queue(session, {req.language}, news)
    return True


async def send_next_wave(
    session: AsyncSession,
    req: InterpretationRequest,
    now: datetime,
    settings: Settings,
    news: News,
) -> None:
    """Offer an open request (locked by the caller) to the next wave of candidates, or
    queue it."""
    if await _offer_and_tell(session, req, now, settings, news):
        return
    moved = await move_request(
        session, req, OPEN, state=RequestState.QUEUED, wave_deadline=None, updated_at=now
    )
    if moved:
        log.info("request_queued", request_id=req.id, language=req.language)
        await tell_queue(session, {req.language}, news)


@dataclass(frozen=True, slots=True)
class Opened:
    """A new request as written: offered to its first wave, or queued."""

    request: InterpretationRequest
    offers: list[tuple[str, str]]
    organization: OrganizationView


def checked_tag(conn: Connection, language: str, wishes: Wishes) -> str:
    """The language as a normalised tag, once the request's wishes name known things."""
    try:
        tag = normalize_tag(language, "language")
    except UnregisteredLanguageTag:
        # Well-formed but no language at all: certainly nobody in the roster speaks it.
        raise UnknownLanguage(f"No interpreter in the roster speaks {language!r}.") from None
    if wishes.specialization and (
        conn.execute(
            select(col(Specialization.name)).where(
                col(Specialization.name) == wishes.specialization
            )
        ).first()
        is None
    ):
        raise UnknownSpecialization("No such specialisation.", field="preferences.specialization")
    return tag


def _new_request(ask: Ask, tag: str, now: datetime, settings: Settings) -> InterpretationRequest:
    wishes = ask.wishes
    soft = bool(wishes.gender or wishes.specialization) and not wishes.required
    row = {
        "id": new_id(),
        "counsellor_id": ask.counsellor_id,
        "organization_id": ask.organization.id,
        "language": tag,
        **wishes.columns(),
        "state": RequestState.QUEUED,
        "created_at": now,
        "updated_at": now,
        "relax_at": now + timedelta(seconds=settings.preference_relax_s)
        if soft and settings.preference_relax_s > 0
        else None,
        "expires_at": now + timedelta(seconds=settings.request_max_wait_s),
        "wave_deadline": None,
        "waves": 0,
        "tier": None,
        "call_id": None,
        "end_reason": None,
        "room_id": ask.room_id,
        "site_id": ask.site_id,
    }
    return new_row(InterpretationRequest, row, fast=settings.fast_paths)


def open_request(
    conn: Connection, ask: Ask, now: datetime, settings: Settings, first: str | None = None
) -> Opened:
    """A counsellor asks for an interpreter (into a consultation room when the ask names
    one) at a site: the request is written with its first wave of offers, or queued when
    nobody is free; 422 when nobody in the roster serves the language. With `first` (a
    booking's interpreter), the first wave is that interpreter alone when free, and the
    waves after it are the policy's. The hot path: run whole by `Database.write_sync`;
    `announce_opened` tells.
    """
    tag = checked_tag(conn, ask.language, ask.wishes)
    req = _new_request(ask, tag, now, settings)
    # Nobody is offered their own request, a booked colleague in the house neither.
    named = (
        [first]
        if first is not None and first != ask.counsellor_id and _free_for_offer(conn, first)
        else None
    )
    offers = _offer_wave(conn, req, now, settings, new=True, to=named)
    if not req.waves:
        # Nobody to offer it to: the request goes into the queue, if anyone in the roster
        # can serve it at all (asked only now: a wave proves it on the hot path).
        if not cands.serving_ranks(conn, tag):
            raise UnknownLanguage(f"No interpreter in the roster speaks {tag!r}.")
        _insert_request(conn, req)
    elif not offers:
        # Every candidate was taken by another request meanwhile (PostgreSQL).
        _move(conn, req, OPEN, state=RequestState.QUEUED, wave_deadline=None, updated_at=now)
    log.info("request_created", request_id=req.id, language=tag, state=str(req.state))
    return Opened(req, offers, ask.organization)


def _free_for_offer(conn: Connection, interpreter_id: str) -> bool:
    """Whether an interpreter may be offered a request now: active, available and holding
    no pending offer (locked on PostgreSQL, as the candidate query locks its rows)."""
    found = conn.execute(
        select(col(Interpreter.user_id))
        .where(col(Interpreter.user_id) == interpreter_id)
        .where(col(Interpreter.status) == Presence.AVAILABLE.value)
        .where(col(Interpreter.active).is_(True))
        .where(
            ~select(col(Offer.id))
            .where(col(Offer.interpreter_id) == interpreter_id)
            .where(PENDING_OFFER)
            .exists()
        )
        .with_for_update(of=Interpreter, skip_locked=True)
    ).first()
    return found is not None


async def announce_opened(db: Database, opened: Opened) -> tuple[RequestView, News]:
    """The news of a committed new request, and its view: offers to the first wave and
    the request to the counsellor's other tabs, or everyone's new place in the queue."""
    req, news = opened.request, News()
    if opened.offers:
        assert req.wave_deadline is not None
        _tell_offers(req, opened.offers, req.wave_deadline, opened.organization, news)
        view = request_view(req)
        news.tell(req.counsellor_id, RequestUpdated(request=view))
        return view, news
    async with db.read() as session:
        await tell_queue(session, {req.language}, news)
        view = await current_view(session, req)
    return view, news


async def get_request(
    session: AsyncSession, request_id: str, user_id: str, role: Role
) -> InterpretationRequest:
    """A request its counsellor or an admin may see; anyone else gets 404."""
    req = await session.get(InterpretationRequest, request_id)
    if req is None or (role != Role.ADMIN and req.counsellor_id != user_id):
        raise RequestNotFound()
    return req


async def close_request(
    session: AsyncSession,
    req: InterpretationRequest,
    state: RequestState,
    end_reason: str,
    offer_reason: str,
    now: datetime,
    settings: Settings,
) -> News | None:
    """End an open request (locked by the caller) as `state`, cancelled or expired: its
    pending offers are revoked and their interpreters offered queued work; the counsellor
    and the queue hear of it. None when the request was no longer open."""
    was_queued = req.state == RequestState.QUEUED
    moved = await move_request(
        session,
        req,
        OPEN,
        state=state,
        end_reason=end_reason,
        wave_deadline=None,
        updated_at=now,
    )
    if not moved:
        return None
    news = News()
    news.count("request", state.value)
    revoked = await close_pending_offers(session, req.id, OfferState.REVOKED, offer_reason, now)
    news.count("offer", "revoked", len(revoked))
    for offer_id, interpreter_id in revoked:
        news.tell(interpreter_id, OfferRevocation(offer_id=offer_id, reason=offer_reason))
    news.tell(req.counsellor_id, RequestUpdated(request=await current_view(session, req)))
    if was_queued:
        await tell_queue(session, {req.language}, news)
    await offer_queued_to_each(session, [i for _, i in revoked], now, settings, news)
    return news


async def cancel_request(
    session: AsyncSession, request_id: str, counsellor_id: str, now: datetime, settings: Settings
) -> tuple[InterpretationRequest, News]:
    """The counsellor withdraws a request that is still queued or being offered."""
    req = await lock_request(session, request_id)
    if req is None or req.counsellor_id != counsellor_id:
        raise RequestNotFound()
    news = await close_request(
        session, req, RequestState.CANCELLED, "cancelled", "cancelled", now, settings
    )
    if news is None:
        raise NotCancellable(f"The request is {req.state!s}; it cannot be cancelled.")
    log.info("request_cancelled", request_id=req.id)
    return req, news


DEACTIVATED = "deactivated"
"""The end reason of a request withdrawn because its counsellor (or terminal) may no longer
ask: an admin deactivated them or revoked the terminal."""


async def withdraw_requests_of(
    session: AsyncSession, counsellor_id: str, now: datetime, settings: Settings
) -> News:
    """End every request of a user that is still queued or being offered (their own, a
    booking's, a room's) as a cancel does, with end reason `deactivated`: accepted ones
    and their calls are left as they are."""
    news = News()
    waiting = await session.exec(
        select(InterpretationRequest)
        .where(col(InterpretationRequest.counsellor_id) == counsellor_id)
        .where(col(InterpretationRequest.state).in_([s.value for s in OPEN]))
        # Locked together, in one order, as any request is locked before its offers.
        .order_by(col(InterpretationRequest.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # Queued ones first: an interpreter freed from an offer of the others is then not
    # offered one of them just before it ends too.
    for req in sorted(waiting, key=lambda r: r.state != RequestState.QUEUED):
        # Offers end as a cancel's do: their interpreters hear the request was cancelled.
        closed = await close_request(
            session, req, RequestState.CANCELLED, DEACTIVATED, "cancelled", now, settings
        )
        if closed is not None:
            log.info("request_withdrawn", request_id=req.id, reason=DEACTIVATED)
            news.extend(closed)
    return news


# -- accepting and declining ------------------------------------------------------------------


def _closed_offer_error(offer: Offer) -> Conflict:
    if offer.state == OfferState.EXPIRED or offer.reason == "expired":
        return OfferExpired()
    if offer.state == OfferState.DECLINED:
        return OfferDeclined()
    if offer.reason == "taken" or offer.state == OfferState.ACCEPTED:
        return OfferTaken()
    return OfferRevoked()


async def _locked_offer(
    session: AsyncSession, offer_id: str, interpreter_id: str
) -> tuple[Offer, InterpretationRequest]:
    """The interpreter's own offer, read again once its request is locked."""
    offer = await session.get(Offer, offer_id)
    # Someone else's offer is reported as missing: its existence is none of their business.
    if offer is None or offer.interpreter_id != interpreter_id:
        raise OfferNotFound()
    req = await lock_request(session, offer.request_id)
    assert req is not None  # a foreign key guarantees it
    result = await session.exec(
        select(Offer).where(col(Offer.id) == offer_id).execution_options(populate_existing=True)
    )
    return result.one(), req


async def roster_tag(session: AsyncSession, tag: str) -> str:
    """The requested language as the roster names it: the tag itself when an interpreter
    speaks it, else the base language that served it (`uk-x-dialekt` -> `uk`).

    A label of the metrics: counsellors may ask for any well-formed variant, the roster
    holds the few that the admins entered.
    """
    exact = await session.exec(
        select(InterpreterLanguage.tag).where(col(InterpreterLanguage.tag) == tag).limit(1)
    )
    return tag if exact.first() is not None else base_language(tag)


async def accept_offer(
    session: AsyncSession, offer_id: str, interpreter_id: str, now: datetime, settings: Settings
) -> tuple[CallView, News]:
    """The offered interpreter takes the request: the call is created and they become busy.

    All in this one transaction: offer pending -> accepted, request offering -> accepted,
    a new call (connecting), interpreter available -> busy, every other offer revoked.
    """
    offer, req = await _locked_offer(session, offer_id, interpreter_id)
    if offer.state == OfferState.ACCEPTED and req.call_id is not None:
        # A repeated click: answer with the call made by the first one.
        existing = await session.get(Call, req.call_id)
        if existing is not None:
            return await load_call_view(session, existing), News()
    call_id = new_id()
    await _take_offer(session, offer, req, call_id, now)
    call = await lifecycle.start_call(
        session,
        call_id,
        request_id=req.id,
        counsellor_id=req.counsellor_id,
        interpreter_id=interpreter_id,
        organization_id=req.organization_id,
        language=req.language,
        audio_only=req.audio_only,
        now=now,
        connect_timeout_s=settings.call_connect_timeout_s,
        room_id=req.room_id,
        site_id=req.site_id,
    )
    if req.room_id is not None:
        await consultation.add_interpreter(session, call, now)
    news = News()
    news.count("request", "accepted")
    news.count("offer", "accepted")
    news.count(
        "accept_wait",
        await roster_tag(session, req.language),
        max((now - req.created_at).total_seconds(), 1e-9),
    )
    news.presence_changed(interpreter_id, Presence.BUSY, "call")
    revoked = await close_pending_offers(session, req.id, OfferState.REVOKED, "taken", now)
    news.count("offer", "revoked", len(revoked))
    for other_id, other_interpreter in revoked:
        news.tell(other_interpreter, OfferRevocation(offer_id=other_id, reason="taken"))
    await record_wait(session, req.language, (now - req.created_at).total_seconds())
    view = await load_call_view(session, call)
    news.tell(req.counsellor_id, RequestUpdated(request=await current_view(session, req)))
    news.tell(req.counsellor_id, CallUpdated(call=view))
    news.tell(interpreter_id, CallUpdated(call=view))
    if req.room_id is not None:
        await tell_room(session, req.room_id, news)
    log.info("offer_accepted", offer_id=offer.id, request_id=req.id, call_id=call.id)
    await offer_queued_to_each(session, [i for _, i in revoked], now, settings, news)
    return view, news


async def _take_offer(
    session: AsyncSession,
    offer: Offer,
    req: InterpretationRequest,
    call_id: str,
    now: datetime,
) -> None:
    """The guarded moves of an accept: the request to `accepted` with its call, the
    interpreter to busy, the offer to accepted; a conflict when any of them lost a race."""
    if offer.state != OfferState.PENDING:
        raise _closed_offer_error(offer)
    if offer.expires_at <= now:
        raise OfferExpired()
    if not await move_request(
        session,
        req,
        (RequestState.OFFERING,),
        state=RequestState.ACCEPTED,
        call_id=call_id,
        wave_deadline=None,
        updated_at=now,
    ):
        raise OfferExpired() if req.state == RequestState.EXPIRED else OfferTaken()
    # The interpreter row is locked before the offer row, as every other path does.
    if not await transition(
        session,
        offer.interpreter_id,
        from_statuses=frozenset({Presence.AVAILABLE, Presence.AWAY}),
        to=Presence.BUSY,
        now=now,
        missed_offers=0,
    ):
        raise NotAvailable()
    won = await session.exec(
        update(Offer)
        .where(col(Offer.id) == offer.id)
        .where(PENDING_OFFER)
        .values(state=OfferState.ACCEPTED.value, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:
        raise OfferTaken()


async def decline_offer(
    session: AsyncSession, offer_id: str, interpreter_id: str, now: datetime, settings: Settings
) -> News:
    """The offered interpreter says no; when nobody of the wave is left, the next one goes."""
    offer, req = await _locked_offer(session, offer_id, interpreter_id)
    news = News()
    if offer.state == OfferState.DECLINED:
        return news
    if offer.state != OfferState.PENDING:
        raise _closed_offer_error(offer)
    await session.exec(
        update(Offer)
        .where(col(Offer.id) == offer.id)
        .where(PENDING_OFFER)
        .values(state=OfferState.DECLINED.value, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    # Declining is an answer, not a missed offer: the run of misses starts again.
    await session.exec(
        update(Interpreter)
        .where(col(Interpreter.user_id) == interpreter_id)
        .values(missed_offers=0)
        .execution_options(synchronize_session=False)
    )
    log.info("offer_declined", offer_id=offer.id, request_id=req.id)
    news.count("offer", "declined")
    if req.state == RequestState.OFFERING and not await _has_pending(session, req.id):
        await send_next_wave(session, req, now, settings, news)
    news.extend(await offer_queued_to(session, interpreter_id, now, settings))
    return news


async def _has_pending(session: AsyncSession, request_id: str) -> bool:
    result = await session.exec(
        select(Offer.id).where(col(Offer.request_id) == request_id).where(PENDING_OFFER).limit(1)
    )
    return result.first() is not None


# -- an interpreter becomes free --------------------------------------------------------------


async def offer_queued_to(
    session: AsyncSession, interpreter_id: str, now: datetime, settings: Settings
) -> News:
    """Offer the oldest queued request an interpreter who just became free can serve."""
    news = News()
    interpreter = await _free_interpreter(session, interpreter_id)
    if interpreter is None:
        return news
    queued = await _queued_for(session, interpreter, now)
    if queued:
        await _offer_and_tell(session, queued[0], now, settings, news, to=[interpreter_id])
    return news


async def _free_interpreter(session: AsyncSession, interpreter_id: str) -> Interpreter | None:
    """The interpreter, locked, if available, active and holding no pending offer."""
    interpreter = (
        await session.exec(
            select(Interpreter)
            .where(col(Interpreter.user_id) == interpreter_id)
            .where(col(Interpreter.status) == Presence.AVAILABLE.value)
            .where(col(Interpreter.active).is_(True))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).first()
    if interpreter is None:
        return None
    pending = await session.exec(
        select(Offer.id).where(col(Offer.interpreter_id) == interpreter_id).where(PENDING_OFFER)
    )
    return interpreter if pending.first() is None else None


async def _queued_for(
    session: AsyncSession, interpreter: Interpreter, now: datetime
) -> list[InterpretationRequest]:
    """Queued requests (locked, oldest first) that the interpreter speaks the language of,
    has not declined, and meets the wishes of while they still hold."""
    interpreter_id = interpreter.user_id
    tags = list(
        await session.exec(
            select(InterpreterLanguage.tag).where(
                col(InterpreterLanguage.interpreter_id) == interpreter_id
            )
        )
    )
    specialisations = set(
        await session.exec(
            select(InterpreterSpecialization.specialization).where(
                col(InterpreterSpecialization.interpreter_id) == interpreter_id
            )
        )
    )
    declined = set(
        await session.exec(
            select(Offer.request_id)
            .where(col(Offer.interpreter_id) == interpreter_id)
            .where(col(Offer.state) == OfferState.DECLINED.value)
        )
    )
    queue = await session.exec(
        select(InterpretationRequest)
        .where(col(InterpretationRequest.state) == RequestState.QUEUED.value)
        .where(cands.request_languages_served_by(tags))
        # Staff who interpret are never offered their own request.
        .where(col(InterpretationRequest.counsellor_id) != interpreter_id)
        .order_by(col(InterpretationRequest.created_at), col(InterpretationRequest.id))
        .limit(50)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    served: list[InterpretationRequest] = []
    for req in queue:
        if req.id in declined:
            continue
        if cands.preferences_hold(req, now) and not _meets_wishes(
            req, interpreter, specialisations
        ):
            continue
        served.append(req)
    return served


async def offer_queued_to_each(
    session: AsyncSession,
    interpreter_ids: list[str],
    now: datetime,
    settings: Settings,
    news: News,
) -> None:
    """Interpreters whose offers were withdrawn are free again: offer them queued work."""
    if not interpreter_ids or not await _anything_queued(session):
        return
    for interpreter_id in sorted(set(interpreter_ids)):
        news.extend(await offer_queued_to(session, interpreter_id, now, settings))


async def _anything_queued(session: AsyncSession) -> bool:
    result = await session.exec(
        select(InterpretationRequest.id)
        .where(col(InterpretationRequest.state) == RequestState.QUEUED.value)
        .limit(1)
    )
    return result.first() is not None


def _meets_wishes(
    req: InterpretationRequest, interpreter: Interpreter, specialisations: set[str]
) -> bool:
    if req.gender and (interpreter.gender or "").lower() != req.gender:
        return False
    return not (req.specialization and req.specialization not in specialisations)


async def tell_queues_of(session: AsyncSession, interpreter_ids: Sequence[str], news: News) -> None:
    """Interpreters came or went: the expected waits in the queues they serve change."""
    if not interpreter_ids or not await _anything_queued(session):
        return
    tags: set[str] = set()
    for start in range(0, len(interpreter_ids), _IDS_PER_STATEMENT):
        chunk = list(interpreter_ids[start : start + _IDS_PER_STATEMENT])
        tags.update(
            await session.exec(
                select(InterpreterLanguage.tag)
                .where(col(InterpreterLanguage.interpreter_id).in_(chunk))
                .distinct()
            )
        )
    if not tags:
        return
    languages = await session.exec(
        select(InterpretationRequest.language)
        .where(col(InterpretationRequest.state) == RequestState.QUEUED.value)
        .where(cands.request_languages_served_by(sorted(tags)))
        .distinct()
    )
    await tell_queue(session, set(languages), news)


async def tell_room(session: AsyncSession, room_id: str, news: News) -> None:
    """`room.updated` to everyone who belongs in the room, as it is now."""
    room = await session.get(Room, room_id)
    if room is None:
        return
    view = await consultation.room_view(session, room)
    for participant in view.participants:
        news.tell(participant.id, RoomUpdated(room=view))
