"""Monthly summaries: what retention's purge is about to delete is added to the summary of
its local month first, in the same transaction, so that the figures of purged months stay.

Each summary holds sums only (counts, seconds, bucketed waits), so a batch adds to what
earlier batches left. A month is counted by the local month of the request's creation,
the offer's creation, the call's connection and the online interval's start.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import col
from sqlmodel import select as model_select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.models import OfferState
from dispatch.models import RequestState as R
from stats.figures import (
    CALL,
    HISTOGRAM_EDGES_S,
    OFFER,
    ONLINE,
    REQ,
    REQUESTS,
    THRESHOLDS_S,
    UNANSWERED,
    WITHIN,
    StatsFilter,
    bucket_of,
    request_facts,
)
from stats.models import InterpreterMonth, RequestMonth
from stats.sql import HOURS_OF_WEEK, local_hour_of_week, month_of, months_starting_in

NO_ORGANIZATION = ""
"""The organisation of online time in InterpreterMonth: it belongs to none."""
_BUCKETS = len(HISTOGRAM_EDGES_S) + 1


def _lists(row: RequestMonth) -> dict[str, list[int]]:
    sizes = {
        "accept_histogram": _BUCKETS,
        "connect_histogram": _BUCKETS,
        "demand_by_hour": HOURS_OF_WEEK,
        "unanswered_by_hour": HOURS_OF_WEEK,
    }
    return {name: json.loads(getattr(row, name)) or [0] * size for name, size in sizes.items()}


async def _request_month(
    session: AsyncSession,
    cache: dict[tuple[str, str, str], RequestMonth],
    key: tuple[str, str, str],
) -> RequestMonth:
    if key not in cache:
        row = await session.get(RequestMonth, key)
        cache[key] = row or RequestMonth(month=key[0], language=key[1], organization_id=key[2])
    return cache[key]


async def summarise_requests(
    session: AsyncSession, request_ids: Sequence[str], zone: ZoneInfo
) -> None:
    """Add these requests, their offers and their calls to their months' summaries."""
    conn = await session.connection()
    rows = (await conn.execute(request_facts(REQ.id.in_(request_ids)))).all()
    cache: dict[tuple[str, str, str], RequestMonth] = {}
    lists: dict[tuple[str, str, str], dict[str, list[int]]] = {}
    for fact in rows:
        key = (month_of(fact.created_at, zone), fact.language, fact.organization_id)
        row = await _request_month(session, cache, key)
        counts = lists.setdefault(key, _lists(row))
        row.requests += 1
        hour = local_hour_of_week(fact.created_at, zone)
        counts["demand_by_hour"][hour] += 1
        if fact.state in UNANSWERED:
            counts["unanswered_by_hour"][hour] += 1
        row.expired += fact.state == R.EXPIRED.value
        row.cancelled += fact.state == R.CANCELLED.value
        row.failed += fact.state == R.FAILED.value
        if fact.accept_s is not None:
            row.answered += 1
            counts["accept_histogram"][bucket_of(fact.accept_s)] += 1
            for name, limit in zip(WITHIN, THRESHOLDS_S, strict=True):
                setattr(row, name, getattr(row, name) + (fact.accept_s <= limit))
        if fact.connect_s is not None:
            counts["connect_histogram"][bucket_of(fact.connect_s)] += 1
    for key, row in cache.items():
        for name, values in lists[key].items():
            setattr(row, name, json.dumps(values))
        session.add(row)
    await _summarise_offers_and_calls(session, request_ids, zone)
    await session.flush()


async def _interpreter_month(
    session: AsyncSession,
    cache: dict[tuple[str, str, str], InterpreterMonth],
    key: tuple[str, str, str],
) -> InterpreterMonth:
    if key not in cache:
        row = await session.get(InterpreterMonth, key)
        cache[key] = row or InterpreterMonth(
            month=key[0], interpreter_id=key[1], organization_id=key[2]
        )
        session.add(cache[key])
    return cache[key]


async def _summarise_offers_and_calls(
    session: AsyncSession, request_ids: Sequence[str], zone: ZoneInfo
) -> None:
    conn = await session.connection()
    cache: dict[tuple[str, str, str], InterpreterMonth] = {}
    offers = await conn.execute(
        select(OFFER.interpreter_id, OFFER.created_at, OFFER.state, REQ.organization_id)
        .join(REQUESTS, REQ.id == OFFER.request_id)
        .where(OFFER.request_id.in_(request_ids))
    )
    for interpreter_id, created_at, state, organization_id in offers.all():
        key = (month_of(created_at, zone), interpreter_id, organization_id)
        row = await _interpreter_month(session, cache, key)
        row.offers += 1
        row.declined += state == OfferState.DECLINED.value
        row.rang_out += state == OfferState.EXPIRED.value
    calls = await conn.execute(
        select(CALL.interpreter_id, CALL.organization_id, CALL.connected_at, CALL.ended_at).where(
            CALL.request_id.in_(request_ids),
            CALL.connected_at.is_not(None),
            CALL.ended_at.is_not(None),
        )
    )
    for interpreter_id, organization_id, connected_at, ended_at in calls.all():
        key = (month_of(connected_at, zone), interpreter_id, organization_id)
        row = await _interpreter_month(session, cache, key)
        row.calls += 1
        row.talk_s += max((ended_at - connected_at).total_seconds(), 0.0)


async def summarise_intervals(
    session: AsyncSession, interval_ids: Sequence[str], zone: ZoneInfo
) -> None:
    """Add these (ended) online intervals to their interpreters' months."""
    conn = await session.connection()
    rows = await conn.execute(
        select(ONLINE.interpreter_id, ONLINE.started_at, ONLINE.ended_at).where(
            ONLINE.id.in_(interval_ids), ONLINE.ended_at.is_not(None)
        )
    )
    cache: dict[tuple[str, str, str], InterpreterMonth] = {}
    for interpreter_id, started_at, ended_at in rows.all():
        key = (month_of(started_at, zone), interpreter_id, NO_ORGANIZATION)
        row = await _interpreter_month(session, cache, key)
        row.online_s += max((ended_at - started_at).total_seconds(), 0.0)
    await session.flush()


async def request_months(
    session: AsyncSession, where: StatsFilter, zone: ZoneInfo
) -> list[RequestMonth]:
    """The request summaries of the months that begin within the period."""
    months = months_starting_in(where.start, where.end, zone)
    if not months:
        return []
    query = model_select(RequestMonth).where(col(RequestMonth.month).in_(months))
    if where.organization_id is not None:
        query = query.where(col(RequestMonth.organization_id) == where.organization_id)
    if where.language is not None:
        query = query.where(col(RequestMonth.language) == where.language)
    return list((await session.exec(query)).all())


async def interpreter_months(
    session: AsyncSession, where: StatsFilter, zone: ZoneInfo
) -> list[InterpreterMonth]:
    """The interpreter summaries of the months that begin within the period: online time,
    and calls and offers of the organisation asked for (or of every one)."""
    months = months_starting_in(where.start, where.end, zone)
    if not months:
        return []
    query = model_select(InterpreterMonth).where(col(InterpreterMonth.month).in_(months))
    if where.organization_id is not None:
        query = query.where(
            col(InterpreterMonth.organization_id).in_([where.organization_id, NO_ORGANIZATION])
        )
    return list((await session.exec(query)).all())


def histogram(row: RequestMonth, kind: str) -> list[int]:
    """A summary's accept or connect histogram."""
    values: list[int] = json.loads(getattr(row, f"{kind}_histogram"))
    return values or [0] * _BUCKETS


def by_hour(row: RequestMonth, kind: str) -> list[int]:
    """A summary's demand or unanswered counts per hour of the week."""
    values: list[int] = json.loads(getattr(row, f"{kind}_by_hour"))
    return values or [0] * HOURS_OF_WEEK
