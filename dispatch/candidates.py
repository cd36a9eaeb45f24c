"""Finding who can serve a request: the language variant rule in SQL, and free interpreters.

The candidate query walks the index over (status, idle_since) of available interpreters
in longest-idle order and stops after the first N that speak the language, so its cost
does not grow with the roster. On PostgreSQL it locks the rows it returns (FOR UPDATE
SKIP LOCKED): two requests dispatched at the same moment never pick the same person, and
an interpreter who is being made busy by an accept is skipped rather than waited for.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.models import Call, InterpretationRequest, Offer, OfferState
from dispatch.policy import Candidate
from interpreters.languages import base_language, serving_tags
from interpreters.models import (
    Interpreter,
    InterpreterLanguage,
    InterpreterSpecialization,
    Presence,
)


def _tag_range(prefix: str) -> ColumnElement[bool]:
    # `tag LIKE 'ar-%'` as a range, so that the index on tag serves it on every backend.
    tag = col(InterpreterLanguage.tag)
    return and_(tag >= prefix + "-", tag < prefix + ".")


def _maybe_serving(requested: str) -> ColumnElement[bool]:
    """Tags that the variant rule might accept for `requested` (a superset, decided in Python)."""
    tag = col(InterpreterLanguage.tag)
    if "-" in requested:
        return or_(tag == requested, tag == base_language(requested))
    return or_(tag == requested, _tag_range(requested))


async def serving_ranks(session: AsyncSession, requested: str) -> dict[str, int]:
    """Tags in the roster that serve `requested`, with their rank (0 exact, 1 related)."""
    rows = await session.exec(
        select(InterpreterLanguage.tag).where(_maybe_serving(requested)).distinct()
    )
    return serving_tags(requested, set(rows))


def request_languages_served_by(tags: list[str]) -> ColumnElement[bool]:
    """Which request languages an interpreter speaking `tags` can serve (variant rule)."""
    language = col(InterpretationRequest.language)
    terms: list[ColumnElement[bool]] = []
    for tag in tags:
        if "-" in tag:
            # ar-SY serves requests for ar-SY and for plain ar.
            terms.append(language.in_([tag, base_language(tag)]))
        else:
            # ar serves requests for ar and for every variant ar-XX (as their fallback).
            terms.append(or_(language == tag, and_(language >= tag + "-", language < tag + ".")))
    return or_(*terms) if terms else language == ""


def preference_filter(req: InterpretationRequest) -> list[ColumnElement[bool]]:
    """SQL conditions for the request's gender and specialisation wishes."""
    conditions: list[ColumnElement[bool]] = []
    if req.gender:
        conditions.append(func.lower(col(Interpreter.gender)) == req.gender.lower())
    if req.specialization:
        conditions.append(
            exists().where(
                col(InterpreterSpecialization.interpreter_id) == col(Interpreter.user_id),
                col(InterpreterSpecialization.specialization) == req.specialization,
            )
        )
    return conditions


def preferences_hold(req: InterpretationRequest, now: datetime) -> bool:
    """Whether only interpreters matching the wishes may be offered the request now."""
    if not (req.gender or req.specialization):
        return False
    if req.preferences_required:
        return True
    return req.relax_at is not None and req.relax_at > now


def _speaks(tags: list[str]) -> ColumnElement[bool]:
    return (
        exists()
        .where(col(InterpreterLanguage.interpreter_id) == col(Interpreter.user_id))
        .where(col(InterpreterLanguage.tag).in_(tags))
    )


def _offered(request_id: str, states: list[OfferState]) -> ColumnElement[bool]:
    return (
        exists()
        .where(col(Offer.interpreter_id) == col(Interpreter.user_id))
        .where(col(Offer.request_id) == request_id)
        .where(col(Offer.state).in_([s.value for s in states]))
    )


_HAS_PENDING_OFFER = (
    exists()
    .where(col(Offer.interpreter_id) == col(Interpreter.user_id))
    .where(col(Offer.state) == OfferState.PENDING.value)
)


async def find_candidates(
    session: AsyncSession,
    req: InterpretationRequest,
    ranks: dict[str, int],
    now: datetime,
    limit: int | None,
    *,
    fresh: bool = False,
) -> list[Candidate]:
    """Free interpreters who can serve the request, in groups the policy ranks further.

    Groups, in order: not yet offered this request (exact variant, then related), then
    those who let an offer of it run out before. Nobody who declined it is offered it
    again. With `limit`, stops once that many are found (each group in idle order). A
    `fresh` request has no history yet, which saves the history conditions.
    """
    exact = sorted(t for t, r in ranks.items() if r == 0)
    related = sorted(t for t, r in ranks.items() if r == 1)
    wishes = preference_filter(req) if preferences_hold(req, now) else []
    found: list[Candidate] = []
    for missed in (False,) if fresh else (False, True):
        history = (
            true()
            if fresh
            else (
                and_(
                    _offered(req.id, [OfferState.EXPIRED]),
                    ~_offered(req.id, [OfferState.DECLINED]),
                )
                if missed
                else ~_offered(req.id, list(OfferState))
            )
        )
        for rank, tags, others in ((0, exact, []), (1, related, exact)):
            want = None if limit is None else limit - len(found)
            if not tags or want == 0:
                continue
            stmt = (
                select(Interpreter.user_id, Interpreter.idle_since)
                .where(col(Interpreter.status) == Presence.AVAILABLE.value)
                .where(col(Interpreter.active) == true())
                .where(_speaks(tags))
                .where(~_speaks(others) if others else true())
                .where(~_HAS_PENDING_OFFER)
                .where(history)
                .where(*wishes)
                # idle_since alone, so that the index delivers rows in order with no sort;
                # equal times come in index order (stable between calls).
                .order_by(col(Interpreter.idle_since))
                .limit(want)
                .with_for_update(of=Interpreter, skip_locked=True)
            )
            for user_id, idle_since in await session.exec(stmt):
                found.append(Candidate(user_id, idle_since, rank, missed))
    return found


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day in the configured time zone."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


async def minutes_today(
    session: AsyncSession, interpreter_ids: list[str], now: datetime, timezone: str
) -> dict[str, float]:
    """Minutes each interpreter spent in connected calls since midnight (local time)."""
    if not interpreter_ids:
        return {}
    midnight = start_of_day(now, timezone)
    rows = await session.exec(
        select(Call.interpreter_id, Call.connected_at, Call.ended_at)
        .where(col(Call.interpreter_id).in_(interpreter_ids))
        .where(col(Call.created_at) >= midnight - timedelta(days=1))
        .where(col(Call.connected_at).is_not(None))
    )
    minutes: dict[str, float] = dict.fromkeys(interpreter_ids, 0.0)
    for interpreter_id, connected_at, ended_at in rows:
        if connected_at is None:
            continue
        start = max(connected_at, midnight)
        end = ended_at or now
        if end > start:
            minutes[interpreter_id] += (end - start).total_seconds() / 60
    return minutes
