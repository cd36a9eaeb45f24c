"""Finding who can serve a request: the language variant rule in SQL, and free interpreters.

The candidate query walks the index over (status, idle_since) of available interpreters
in longest-idle order and stops after the first N that speak the language, so its cost
does not grow with the roster. On PostgreSQL it locks the rows it returns (FOR UPDATE
SKIP LOCKED): two requests dispatched at the same moment never pick the same person, and
an interpreter who is being made busy by an accept is skipped rather than waited for.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    bindparam,
    exists,
    func,
    or_,
    true,
)
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from calls.models import Call
from dispatch.models import PENDING_OFFER, InterpretationRequest, Offer, OfferState
from dispatch.policy import Candidate, Tier
from infra.clock import start_of_day
from interpreters.languages import base_language, serving_tags
from interpreters.models import (
    TIER_ORDER,
    Interpreter,
    InterpreterLanguage,
    InterpreterPool,
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


def serving_ranks(conn: Connection, requested: str) -> dict[str, int]:
    """Tags in the roster that serve `requested`, with their rank (0 exact, 1 related)."""
    rows = conn.execute(
        select(col(InterpreterLanguage.tag)).where(_maybe_serving(requested)).distinct()
    )
    return serving_tags(requested, set(rows.scalars()))


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


def preferences_hold(req: InterpretationRequest, now: datetime) -> bool:
    """Whether only interpreters matching the wishes may be offered the request now."""
    if not (req.gender or req.specialization):
        return False
    if req.preferences_required:
        return True
    return req.relax_at is not None and req.relax_at > now


def _speaks(tag: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(col(InterpreterLanguage.interpreter_id) == col(Interpreter.user_id), tag)


def _offered(states: list[OfferState]) -> ColumnElement[bool]:
    return (
        exists()
        .where(col(Offer.interpreter_id) == col(Interpreter.user_id))
        .where(col(Offer.request_id) == bindparam("request_id"))
        .where(col(Offer.state).in_([s.value for s in states]))
    )


_HAS_PENDING_OFFER = (
    exists().where(col(Offer.interpreter_id) == col(Interpreter.user_id)).where(PENDING_OFFER)
)


_POOL_TIERS = (
    select(col(InterpreterPool.tier), func.max(col(InterpreterPool.escalation_s)))
    .where(
        exists().where(
            col(Interpreter.pool_id) == col(InterpreterPool.id), col(Interpreter.active) == true()
        )
    )
    .group_by(col(InterpreterPool.tier))
)
"""Built once: every wave asks, and building the statement costs more than running it."""


def pool_tiers(conn: Connection) -> list[Tier]:
    """The tiers whose pools have active interpreters, in the order requests reach them,
    each with the longest escalation time among its pools."""
    rows = conn.execute(_POOL_TIERS)
    found = {str(tier): float(escalation_s) for tier, escalation_s in rows}
    return [Tier(str(t), found[str(t)]) for t in TIER_ORDER if str(t) in found]


_IN_TIER = col(Interpreter.pool_id).in_(
    select(col(InterpreterPool.id)).where(col(InterpreterPool.tier) == bindparam("tier"))
)


@functools.cache
def _candidate_query(
    related: bool,
    variant: bool,
    history: str,
    gender: bool,
    specialization: bool,
    limit: bool,
    tiered: bool = False,
) -> Select[str, datetime]:
    """The candidate query of one shape, built once: its values are bound parameters, so
    the hot path neither builds a statement nor computes its cache key.

    `related` picks the fallback group (variants of a plain request, or the plain language
    of a variant request) instead of exact speakers; `history` is "fresh" (no offers
    yet), "new" (never offered this request) or "missed" (let an offer of it run out);
    `tiered` keeps to the pools of one tier. The counsellor who asks is never a candidate
    (staff who interpret are counsellors too).
    """
    tag = col(InterpreterLanguage.tag)
    exact = _speaks(tag == bindparam("requested"))
    if not related:
        speaks = exact
    elif variant:
        speaks = and_(_speaks(tag == bindparam("base")), ~exact)
    else:
        # _tag_range with bound values.
        speaks = and_(_speaks(and_(tag >= bindparam("low"), tag < bindparam("high"))), ~exact)
    conditions = [speaks, ~_HAS_PENDING_OFFER, col(Interpreter.user_id) != bindparam("asker")]
    if tiered:
        conditions.append(_IN_TIER)
    if history == "new":
        conditions.append(~_offered(list(OfferState)))
    elif history == "missed":
        conditions += [_offered([OfferState.EXPIRED]), ~_offered([OfferState.DECLINED])]
    if gender:
        conditions.append(func.lower(col(Interpreter.gender)) == bindparam("gender"))
    if specialization:
        conditions.append(
            exists().where(
                col(InterpreterSpecialization.interpreter_id) == col(Interpreter.user_id),
                col(InterpreterSpecialization.specialization) == bindparam("specialization"),
            )
        )
    stmt = (
        select(col(Interpreter.user_id), col(Interpreter.idle_since))
        .where(col(Interpreter.status) == Presence.AVAILABLE.value)
        .where(col(Interpreter.active) == true())
        .where(*conditions)
        # idle_since alone, so that the index delivers rows in order with no sort;
        # equal times come in index order (stable between calls).
        .order_by(col(Interpreter.idle_since))
        .with_for_update(of=Interpreter, skip_locked=True)
    )
    return stmt.limit(bindparam("limit", type_=Integer)) if limit else stmt


def find_candidates(
    conn: Connection,
    req: InterpretationRequest,
    now: datetime,
    limit: int | None,
    *,
    fresh: bool = False,
    tiers: Sequence[str] = (),
) -> list[Candidate]:
    """Free interpreters who can serve the request, in groups the policy ranks further.

    Groups, in order: not yet offered this request, then those who let an offer of it run
    out before; within each, tier by tier of `tiers` (all pools when empty), the exact
    variant, then related. Nobody who declined it is offered it again. With `limit`, stops
    once that many are found (each group in idle order). A `fresh` request has no history
    yet, which saves the history conditions.
    """
    requested = req.language
    wishes = preferences_hold(req, now)
    gender = bool(wishes and req.gender)
    specialization = bool(wishes and req.specialization)
    params: dict[str, object] = {
        "requested": requested,
        "base": base_language(requested),
        "low": requested + "-",
        "high": requested + ".",
        "request_id": req.id,
        "gender": (req.gender or "").lower(),
        "specialization": req.specialization,
        "asker": req.counsellor_id,
    }
    variant = "-" in requested
    found: list[Candidate] = []
    groups = [
        (history, tier, rank)
        for history in (("fresh",) if fresh else ("new", "missed"))
        for tier in range(max(len(tiers), 1))
        for rank in (0, 1)
    ]
    for history, tier, rank in groups:
        want = None if limit is None else limit - len(found)
        if want == 0:
            break
        stmt = _candidate_query(
            rank == 1, variant, history, gender, specialization, want is not None, bool(tiers)
        )
        bound = {**params, "limit": want, "tier": tiers[tier] if tiers else None}
        for user_id, idle_since in conn.execute(stmt, bound):
            found.append(Candidate(user_id, idle_since, rank, history == "missed", tier=tier))
    return found


def minutes_today(
    conn: Connection, interpreter_ids: list[str], now: datetime, timezone: str
) -> dict[str, float]:
    """Minutes each interpreter spent in connected calls since midnight (local time)."""
    if not interpreter_ids:
        return {}
    midnight = start_of_day(now, timezone)
    rows = conn.execute(
        select(col(Call.interpreter_id), col(Call.connected_at), col(Call.ended_at))
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
