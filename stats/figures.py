"""The figures from raw rows: each one SQL statement over indexed time ranges of requests,
offers, calls or online intervals, answering alike on SQLite and PostgreSQL.

Waits are whole seconds rounded up, from integer milliseconds (`millis_between`), so that
both databases count and rank them identically; the report layer ranks them (nearest-rank
percentiles) together with those of summarised months (stats.summaries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calls.models import LIVE_CALL, Call
from dispatch.models import InterpretationRequest, Offer, OfferState
from dispatch.models import RequestState as R
from interpreters.models import PresenceInterval
from stats.sql import HOURS_OF_WEEK, at, epoch_s, hour_of_week, millis_between, whole_seconds

THRESHOLDS_MS = (30_000, 120_000, 300_000)
"""'Answered within' limits: 30 s, 2 min, 5 min from request to accept."""
WITHIN = ("within_30s", "within_2min", "within_5min")
"""The names of those counts."""
UNANSWERED = (R.EXPIRED.value, R.CANCELLED.value)
"""Requests nobody took: they ran out, or the counsellor gave up waiting."""
WAITING = (R.QUEUED.value, R.OFFERING.value)
COUNTS = ("requests", "answered", *WITHIN, "expired", "cancelled", "failed")
"""The per-language counts that raw rows and summaries both hold."""

REQUESTS = InterpretationRequest.__table__  # type: ignore[attr-defined]
CALLS = Call.__table__  # type: ignore[attr-defined]
OFFERS = Offer.__table__  # type: ignore[attr-defined]
INTERVALS = PresenceInterval.__table__  # type: ignore[attr-defined]
REQ, CALL, OFFER, ONLINE = REQUESTS.c, CALLS.c, OFFERS.c, INTERVALS.c

Ranges = Sequence[tuple[datetime, datetime]]
Histogram = dict[int, int]
"""Whole seconds -> how many waits of that length."""


@dataclass(frozen=True, slots=True)
class StatsFilter:
    """Which requests the figures cover: made in [start, end), optionally of one
    organisation, one language and one site."""

    start: datetime
    end: datetime
    organization_id: str | None = None
    language: str | None = None
    site_id: str | None = None

    def matching(self, columns: Any) -> list[ColumnElement[bool]]:
        """The organisation, language and site asked for, as conditions on the columns of
        the same names (of a table's columns or a model)."""
        asked = [(name, getattr(self, name)) for name in ("organization_id", "language", "site_id")]
        return [getattr(columns, name) == value for name, value in asked if value is not None]


def within(column: Any, ranges: Ranges) -> ColumnElement[bool]:
    """`column` lies in one of the [start, end) ranges (each an index range scan)."""
    return or_(*[and_(column >= at(a), column < at(b)) for a, b in ranges])


def _request_conditions(where: StatsFilter, ranges: Ranges) -> list[ColumnElement[bool]]:
    return [within(REQ.created_at, ranges), *where.matching(REQ)]


CALL_AFTER_REQUEST = timedelta(days=1)
"""A request's call is made within this of the request (requests expire within minutes)."""


def request_facts(*conditions: ColumnElement[bool], ranges: Ranges = ()) -> Any:
    """Per request: language, organisation, state, creation, and the milliseconds from the
    request to its accept (the call's creation) and to the call's connection. With
    `ranges` (of the requests' creation), only calls made then are looked at: PostgreSQL
    then reads calls by their index instead of all of them."""
    join = CALL.request_id == REQ.id
    if ranges:
        join = and_(join, within(CALL.created_at, [(a, b + CALL_AFTER_REQUEST) for a, b in ranges]))
    return (
        select(
            REQ.language,
            REQ.organization_id,
            REQ.site_id,
            REQ.state,
            REQ.created_at,
            millis_between(CALL.created_at, REQ.created_at).label("accept_ms"),
            millis_between(CALL.connected_at, REQ.created_at).label("connect_ms"),
        )
        .select_from(REQUESTS.outerjoin(CALLS, join))
        .where(*conditions)
    )


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


async def language_figures(
    session: AsyncSession, where: StatsFilter, ranges: Ranges
) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], Histogram]]:
    """Per language the counts (requests, answered, answered within 30 s / 2 min / 5 min,
    expired, cancelled, failed, waiting), and per (language, `accept` or `connect`) how
    many waits of each whole second: two grouped scans of the joined rows."""
    counts: dict[str, dict[str, int]] = {}
    waits: dict[tuple[str, str], Histogram] = {}
    if not ranges:
        return counts, waits
    facts = request_facts(*_request_conditions(where, ranges), ranges=ranges).subquery()
    conn = await session.connection()
    # Grouped over subqueries: PostgreSQL does not take an expression with bound values in
    # GROUP BY for the one in the select list.
    accepted = select(
        facts.c.language, facts.c.state, whole_seconds(facts.c.accept_ms).label("s")
    ).subquery()
    query = select(accepted, func.count()).group_by(*accepted.c)
    for language, state, seconds, n in (await conn.execute(query)).all():
        row = counts.setdefault(language, dict.fromkeys((*COUNTS, "waiting"), 0))
        row["requests"] += n
        if state in (R.EXPIRED.value, R.CANCELLED.value, R.FAILED.value):
            row[state] += n
        elif state in WAITING:
            row["waiting"] += n
        if seconds is not None:
            row["answered"] += n
            for name, limit in zip(WITHIN, THRESHOLDS_MS, strict=True):
                # A whole second rounded up is within the limit exactly when its millis are.
                row[name] += n if seconds * 1000 <= limit else 0
            histogram = waits.setdefault((language, "accept"), {})
            histogram[int(seconds)] = histogram.get(int(seconds), 0) + int(n)
    connected = (
        select(facts.c.language, whole_seconds(facts.c.connect_ms).label("s"))
        .where(facts.c.connect_ms.is_not(None))
        .subquery()
    )
    query = select(connected, func.count()).group_by(*connected.c)
    for language, seconds, n in (await conn.execute(query)).all():
        waits.setdefault((language, "connect"), {})[int(seconds)] = int(n)
    return counts, waits


def nearest_rank(histogram: Histogram, percent: int) -> int | None:
    """The p-th percentile of the waits: the one at rank ceil(p * n / 100), shortest first."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = (percent * total + 99) // 100
    seen = 0
    for seconds in sorted(histogram):
        seen += histogram[seconds]
        if seen >= rank:
            return seconds
    return None


async def heat_map(
    session: AsyncSession, where: StatsFilter, ranges: Ranges, zone: ZoneInfo
) -> tuple[list[int], list[int]]:
    """Requests and unanswered requests per local hour of the week (168 counts each,
    Monday 00:00-01:00 first)."""
    demand = [0] * HOURS_OF_WEEK
    unanswered = [0] * HOURS_OF_WEEK
    if not ranges:
        return demand, unanswered
    how = hour_of_week(REQ.created_at, ranges[0][0], ranges[-1][1], zone)
    inner = (
        select(how.label("how"), REQ.state).where(*_request_conditions(where, ranges)).subquery()
    )
    query = select(inner.c.how, func.count(), _count_if(inner.c.state.in_(UNANSWERED))).group_by(
        inner.c.how
    )
    conn = await session.connection()
    for hour, count, missed in (await conn.execute(query)).all():
        demand[int(hour)] = int(count)
        unanswered[int(hour)] = int(missed or 0)
    return demand, unanswered


def _later(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _earlier(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


async def online_seconds(session: AsyncSession, ranges: Ranges, now: datetime) -> dict[str, float]:
    """Per interpreter, the seconds online within the ranges (an open interval up to now)."""
    found: dict[str, float] = {}
    conn = await session.connection()
    for start, end in ranges:
        until = func.coalesce(ONLINE.ended_at, at(min(now, end)))
        overlap = epoch_s(_earlier(until, at(end))) - epoch_s(_later(ONLINE.started_at, at(start)))
        query = (
            select(ONLINE.interpreter_id, func.sum(overlap))
            .where(
                ONLINE.started_at < at(end),
                or_(ONLINE.ended_at.is_(None), ONLINE.ended_at > at(start)),
            )
            .group_by(ONLINE.interpreter_id)
        )
        for who, seconds in (await conn.execute(query)).all():
            found[who] = found.get(who, 0.0) + max(float(seconds or 0.0), 0.0)
    return found


async def call_figures(
    session: AsyncSession, where: StatsFilter, ranges: Ranges, now: datetime
) -> dict[str, tuple[int, float]]:
    """Per interpreter, the calls connected within the ranges and their talk seconds (a
    live call counts up to now)."""
    if not ranges:
        return {}
    conditions = [within(CALL.connected_at, ranges), *where.matching(CALL)]
    talk = epoch_s(func.coalesce(CALL.ended_at, at(now))) - epoch_s(CALL.connected_at)
    query = (
        select(CALL.interpreter_id, func.count(), func.sum(talk))
        .where(*conditions)
        .group_by(CALL.interpreter_id)
    )
    conn = await session.connection()
    rows = (await conn.execute(query)).all()
    return {row[0]: (int(row[1]), float(row[2] or 0.0)) for row in rows}


async def offer_figures(
    session: AsyncSession, where: StatsFilter, ranges: Ranges
) -> dict[str, tuple[int, int, int]]:
    """Per interpreter, offers made within the ranges: (offered, declined, let ring out)."""
    if not ranges:
        return {}
    conditions = [within(OFFER.created_at, ranges)]
    source: Any = OFFERS
    if asked := where.matching(REQ):
        # An offer's organisation, language and site are its request's.
        source = OFFERS.join(REQUESTS, REQ.id == OFFER.request_id)
        conditions += asked
    query = (
        select(
            OFFER.interpreter_id,
            func.count(),
            _count_if(OFFER.state == OfferState.DECLINED.value),
            _count_if(OFFER.state == OfferState.EXPIRED.value),
        )
        .select_from(source)
        .where(*conditions)
        .group_by(OFFER.interpreter_id)
    )
    conn = await session.connection()
    rows = (await conn.execute(query)).all()
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}


async def waiting_now(
    session: AsyncSession, now: datetime, organization_id: str | None
) -> dict[str, tuple[int, float]]:
    """Per language, the requests waiting now and how long the longest has waited."""
    conditions = [REQ.state.in_(WAITING)]
    if organization_id is not None:
        conditions.append(REQ.organization_id == organization_id)
    query = (
        select(REQ.language, func.count(), func.min(REQ.created_at))
        .where(*conditions)
        .group_by(REQ.language)
    )
    conn = await session.connection()
    return {
        language: (int(count), max((now - oldest).total_seconds(), 0.0))
        for language, count, oldest in (await conn.execute(query)).all()
    }


async def calls_live(session: AsyncSession, organization_id: str | None) -> int:
    """Calls connecting or connected now."""
    query = select(func.count()).select_from(CALLS).where(LIVE_CALL)
    if organization_id is not None:
        query = query.where(CALL.organization_id == organization_id)
    conn = await session.connection()
    return int((await conn.execute(query)).scalar_one())
