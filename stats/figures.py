"""The figures, each one SQL statement over an indexed period of requests, offers, calls
or online intervals, answering alike on SQLite and PostgreSQL.

Percentiles are nearest-rank: the p-th percentile of n waits is the wait at rank
ceil(p * n / 100) when they are sorted from short to long (the median of 4 waits is the
2nd), always a wait that happened. Months whose raw rows retention deleted are read from
their monthly summaries (`stats.summaries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, literal, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calls.models import LIVE_CALL, Call
from dispatch.models import InterpretationRequest, Offer, OfferState
from dispatch.models import RequestState as R
from interpreters.models import PresenceInterval
from stats.sql import HOURS_OF_WEEK, at, epoch_s, hour_of_week

THRESHOLDS_S = (30, 120, 300)
"""'Answered within' limits: 30 s, 2 min, 5 min from request to accepted."""
WITHIN = ("within_30s", "within_2min", "within_5min")
"""The names of those counts."""
UNANSWERED = (R.EXPIRED.value, R.CANCELLED.value)
"""Requests nobody took: they ran out, or the counsellor gave up waiting."""
WAITING = (R.QUEUED.value, R.OFFERING.value)

REQUESTS = InterpretationRequest.__table__  # type: ignore[attr-defined]
CALLS = Call.__table__  # type: ignore[attr-defined]
OFFERS = Offer.__table__  # type: ignore[attr-defined]
INTERVALS = PresenceInterval.__table__  # type: ignore[attr-defined]
REQ, CALL, OFFER, ONLINE = REQUESTS.c, CALLS.c, OFFERS.c, INTERVALS.c


@dataclass(frozen=True, slots=True)
class StatsFilter:
    """Which requests the figures cover: made in [start, end), optionally of one
    organisation and one language. (A site filter belongs here once sites exist.)"""

    start: datetime
    end: datetime
    organization_id: str | None = None
    language: str | None = None

    def requests(self) -> list[ColumnElement[bool]]:
        """Conditions on interpretation_request."""
        found = [REQ.created_at >= at(self.start), REQ.created_at < at(self.end)]
        if self.organization_id is not None:
            found.append(REQ.organization_id == self.organization_id)
        if self.language is not None:
            found.append(REQ.language == self.language)
        return found


def request_facts(*conditions: ColumnElement[bool]) -> Any:
    """Per request: language, organisation, state, creation, and the seconds from the
    request to its accept (the call's creation) and to the call's connection."""
    return (
        select(
            REQ.language,
            REQ.organization_id,
            REQ.state,
            REQ.created_at,
            (epoch_s(CALL.created_at) - epoch_s(REQ.created_at)).label("accept_s"),
            (epoch_s(CALL.connected_at) - epoch_s(REQ.created_at)).label("connect_s"),
        )
        .select_from(REQUESTS.outerjoin(CALLS, CALL.request_id == REQ.id))
        .where(*conditions)
    )


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _nearest_rank(value: Any, rank: Any, count: Any, percent: int) -> Any:
    # ceil(p * n / 100) in integers: (p * n + 99) // 100.
    return func.max(case((rank == (count * percent + 99) // 100, value)))


async def language_rows(session: AsyncSession, where: StatsFilter) -> list[dict[str, Any]]:
    """Per language: requests, how soon they were answered, how many nobody took, and the
    median and 90th percentile of the time to accept and to connect."""
    facts = request_facts(*where.requests()).subquery()
    ranked = select(
        facts,
        func.row_number()
        .over(
            partition_by=[facts.c.language, facts.c.accept_s.is_(None)], order_by=facts.c.accept_s
        )
        .label("accept_rank"),
        func.count(facts.c.accept_s).over(partition_by=facts.c.language).label("accepted"),
        func.row_number()
        .over(
            partition_by=[facts.c.language, facts.c.connect_s.is_(None)],
            order_by=facts.c.connect_s,
        )
        .label("connect_rank"),
        func.count(facts.c.connect_s).over(partition_by=facts.c.language).label("connected"),
    ).subquery()
    q = ranked.c
    within = [
        _count_if(q.accept_s <= limit).label(name)
        for name, limit in zip(WITHIN, THRESHOLDS_S, strict=True)
    ]
    query = (
        select(
            q.language,
            func.count().label("requests"),
            _count_if(q.accept_s.is_not(None)).label("answered"),
            *within,
            _count_if(q.state == R.EXPIRED.value).label("expired"),
            _count_if(q.state == R.CANCELLED.value).label("cancelled"),
            _count_if(q.state == R.FAILED.value).label("failed"),
            _count_if(q.state.in_(WAITING)).label("waiting"),
            _nearest_rank(q.accept_s, q.accept_rank, q.accepted, 50).label("accept_p50"),
            _nearest_rank(q.accept_s, q.accept_rank, q.accepted, 90).label("accept_p90"),
            _nearest_rank(q.connect_s, q.connect_rank, q.connected, 50).label("connect_p50"),
            _nearest_rank(q.connect_s, q.connect_rank, q.connected, 90).label("connect_p90"),
        )
        .group_by(q.language)
        .order_by(q.language)
    )
    conn = await session.connection()
    return [dict(row._mapping) for row in (await conn.execute(query)).all()]


HISTOGRAM_EDGES_S = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 600, 900, 1800)
"""Upper edges of the wait buckets the monthly summaries keep; a last bucket holds longer."""


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a wait."""
    for index, edge in enumerate(HISTOGRAM_EDGES_S):
        if seconds <= edge:
            return index
    return len(HISTOGRAM_EDGES_S)


def _bucket_sql(value: Any) -> Any:
    return case(
        *[(value <= edge, literal(i)) for i, edge in enumerate(HISTOGRAM_EDGES_S)],
        else_=literal(len(HISTOGRAM_EDGES_S)),
    )


async def wait_histograms(
    session: AsyncSession, where: StatsFilter
) -> dict[tuple[str, str], list[int]]:
    """Per (language, `accept` or `connect`), the waits of the period counted per bucket:
    what raw rows add to summarised months when a period spans both."""
    facts = request_facts(*where.requests()).subquery()
    found: dict[tuple[str, str], list[int]] = {}
    conn = await session.connection()
    for kind in ("accept", "connect"):
        value = facts.c[f"{kind}_s"]
        inner = (
            select(facts.c.language, _bucket_sql(value).label("bucket"))
            .where(value.is_not(None))
            .subquery()
        )
        query = select(inner.c.language, inner.c.bucket, func.count()).group_by(
            inner.c.language, inner.c.bucket
        )
        for language, bucket, count in (await conn.execute(query)).all():
            counts = found.setdefault((language, kind), [0] * (len(HISTOGRAM_EDGES_S) + 1))
            counts[int(bucket)] += int(count)
    return found


def histogram_percentile(counts: list[int], percent: int) -> float | None:
    """The nearest-rank percentile of bucketed waits, as the upper edge of its bucket
    (None past the last edge or without waits)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = (percent * total + 99) // 100
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return float(HISTOGRAM_EDGES_S[index]) if index < len(HISTOGRAM_EDGES_S) else None
    return None


async def heat_map(
    session: AsyncSession, where: StatsFilter, zone: ZoneInfo
) -> tuple[list[int], list[int]]:
    """Requests and unanswered requests per local hour of the week (168 counts each,
    Monday 00:00-01:00 first)."""
    how = hour_of_week(REQ.created_at, where.start, where.end, zone)
    # Grouped over a subquery: PostgreSQL does not take a CASE with bound values in
    # GROUP BY for the one in the select list.
    inner = select(how.label("how"), REQ.state).where(*where.requests()).subquery()
    query = select(inner.c.how, func.count(), _count_if(inner.c.state.in_(UNANSWERED))).group_by(
        inner.c.how
    )
    demand = [0] * HOURS_OF_WEEK
    unanswered = [0] * HOURS_OF_WEEK
    conn = await session.connection()
    for hour, count, missed in (await conn.execute(query)).all():
        demand[int(hour)] = int(count)
        unanswered[int(hour)] = int(missed or 0)
    return demand, unanswered


def _later(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _earlier(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


async def online_seconds(
    session: AsyncSession, start: datetime, end: datetime, now: datetime
) -> dict[str, float]:
    """Per interpreter, the seconds online within [start, end) (an open interval up to now)."""
    until = func.coalesce(ONLINE.ended_at, at(now))
    overlap = epoch_s(_earlier(until, at(end))) - epoch_s(_later(ONLINE.started_at, at(start)))
    query = (
        select(ONLINE.interpreter_id, func.sum(overlap))
        .where(
            ONLINE.started_at < at(end), or_(ONLINE.ended_at.is_(None), ONLINE.ended_at > at(start))
        )
        .group_by(ONLINE.interpreter_id)
    )
    conn = await session.connection()
    rows = (await conn.execute(query)).all()
    return {row[0]: max(float(row[1] or 0.0), 0.0) for row in rows}


async def call_figures(
    session: AsyncSession, where: StatsFilter, now: datetime
) -> dict[str, tuple[int, float]]:
    """Per interpreter, the calls connected within the period and their talk seconds (a
    live call counts up to now)."""
    conditions = [CALL.connected_at >= at(where.start), CALL.connected_at < at(where.end)]
    if where.organization_id is not None:
        conditions.append(CALL.organization_id == where.organization_id)
    if where.language is not None:
        conditions.append(CALL.language == where.language)
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
    session: AsyncSession, where: StatsFilter
) -> dict[str, tuple[int, int, int]]:
    """Per interpreter, offers made in the period: (offered, declined, let ring out)."""
    conditions = [OFFER.created_at >= at(where.start), OFFER.created_at < at(where.end)]
    source: Any = OFFERS
    if where.organization_id is not None or where.language is not None:
        source = OFFERS.join(REQUESTS, REQ.id == OFFER.request_id)
        if where.organization_id is not None:
            conditions.append(REQ.organization_id == where.organization_id)
        if where.language is not None:
            conditions.append(REQ.language == where.language)
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
