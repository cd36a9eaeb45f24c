"""Monthly summaries: sums of the rows the figures no longer read one by one.

Two things add to them. The hourly job seals every local month that ended more than a day
ago: its rows are summed once, and from then on a period that holds the whole month reads
the month's summary instead of its rows (that keeps a year within a second). Retention's
purge adds what it deletes from a month not sealed yet, in the same transaction. Both only
add, so each row is counted once. A request counts in the month it was made, an offer in
the month it was made, a call in the month it connected, online time in the month it fell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlmodel import col
from sqlmodel import select as model_select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.models import OfferState
from dispatch.models import RequestState as R
from infra.db import Database
from stats.figures import (
    CALL,
    OFFER,
    OFFERS,
    ONLINE,
    REQ,
    REQUESTS,
    THRESHOLDS_MS,
    UNANSWERED,
    WITHIN,
    Histogram,
    StatsFilter,
    request_facts,
    within,
)
from stats.models import InterpreterMonth, RequestMonth, SealedMonth
from stats.sql import (
    HOURS_OF_WEEK,
    at,
    local_hour_of_week,
    month_bounds,
    month_of,
    split_by_month,
)

NO_ORGANIZATION = ""
"""The organisation of online time in InterpreterMonth: it belongs to none."""
NO_SITE = ""
"""The site of rows of no site (and of online time) in the summaries."""
SEAL_AFTER = timedelta(days=1)
"""A month is sealed this long after it ended: by then its requests are all decided."""

Key = tuple[str, str, str, str]


def histogram(row: RequestMonth, kind: str) -> Histogram:
    """A summary's accept or connect waits: whole seconds -> count."""
    return {int(s): n for s, n in json.loads(getattr(row, f"{kind}_histogram") or "{}").items()}


def by_hour(row: RequestMonth, kind: str) -> list[int]:
    """A summary's demand or unanswered counts per hour of the week."""
    values: list[int] = json.loads(getattr(row, f"{kind}_by_hour") or "[]")
    return values or [0] * HOURS_OF_WEEK


async def sealed_months(session: AsyncSession) -> set[str]:
    """The months whose rows are all in the summaries."""
    return set((await session.exec(model_select(SealedMonth.month))).all())


class _Sums:
    """Summary rows being added to within one transaction."""

    def __init__(self, session: AsyncSession, zone: ZoneInfo, skip: set[str]) -> None:
        self.session = session
        self.zone = zone
        self.skip = skip
        self.requests: dict[Key, RequestMonth] = {}
        self.lists: dict[Key, dict[str, Any]] = {}
        self.people: dict[Key, InterpreterMonth] = {}

    async def load(self, month: str) -> None:
        """Read a month's summaries in two queries instead of one per key."""
        for row in await request_months(self.session, [month]):
            self.requests[(row.month, row.language, row.organization_id, row.site_id)] = row
        for person in await interpreter_months(self.session, [month], None):
            key = (person.month, person.interpreter_id, person.organization_id, person.site_id)
            self.people[key] = person

    async def request_month(self, key: Key) -> tuple[RequestMonth, dict[str, Any]]:
        if key not in self.lists:
            row = self.requests.get(key) or await self.session.get(RequestMonth, key)
            row = row or RequestMonth(
                month=key[0], language=key[1], organization_id=key[2], site_id=key[3]
            )
            self.requests[key] = row
            self.lists[key] = {
                "accept_histogram": histogram(row, "accept"),
                "connect_histogram": histogram(row, "connect"),
                "demand_by_hour": by_hour(row, "demand"),
                "unanswered_by_hour": by_hour(row, "unanswered"),
            }
        return self.requests[key], self.lists[key]

    async def person(self, key: Key) -> InterpreterMonth:
        if key not in self.people:
            row = await self.session.get(InterpreterMonth, key)
            self.people[key] = row or InterpreterMonth(
                month=key[0], interpreter_id=key[1], organization_id=key[2], site_id=key[3]
            )
        return self.people[key]

    async def person_at(
        self, moment: datetime, interpreter_id: str, organization_id: str, site_id: str | None
    ) -> InterpreterMonth | None:
        """The interpreter's summary for an organisation and site in the month of `moment`
        (None when that month is skipped)."""
        month = month_of(moment, self.zone)
        if month in self.skip:
            return None
        return await self.person((month, interpreter_id, organization_id, site_id or NO_SITE))

    async def add_requests(self, facts: Iterable[Any]) -> None:
        for fact in facts:
            month = month_of(fact.created_at, self.zone)
            if month in self.skip:
                continue
            key = (month, fact.language, fact.organization_id, fact.site_id or NO_SITE)
            row, lists = await self.request_month(key)
            row.requests += 1
            hour = local_hour_of_week(fact.created_at, self.zone)
            lists["demand_by_hour"][hour] += 1
            if fact.state in UNANSWERED:
                lists["unanswered_by_hour"][hour] += 1
            row.expired += fact.state == R.EXPIRED.value
            row.cancelled += fact.state == R.CANCELLED.value
            row.failed += fact.state == R.FAILED.value
            if fact.accept_ms is not None:
                row.answered += 1
                _count(lists["accept_histogram"], fact.accept_ms)
                for name, limit in zip(WITHIN, THRESHOLDS_MS, strict=True):
                    setattr(row, name, getattr(row, name) + (fact.accept_ms <= limit))
            if fact.connect_ms is not None:
                _count(lists["connect_histogram"], fact.connect_ms)

    async def add_offers(self, offers: Iterable[Any]) -> None:
        for interpreter_id, created_at, state, organization_id, site_id in offers:
            row = await self.person_at(created_at, interpreter_id, organization_id, site_id)
            if row is not None:
                row.offers += 1
                row.declined += state == OfferState.DECLINED.value
                row.rang_out += state == OfferState.EXPIRED.value

    async def add_calls(self, calls: Iterable[Any]) -> None:
        for interpreter_id, organization_id, site_id, connected_at, ended_at in calls:
            row = await self.person_at(connected_at, interpreter_id, organization_id, site_id)
            if row is not None:
                row.calls += 1
                row.talk_s += max((ended_at - connected_at).total_seconds(), 0.0)

    async def add_online(self, interpreter_id: str, start: datetime, end: datetime) -> None:
        for month, seconds in split_by_month(start, end, self.zone):
            if month not in self.skip:
                row = await self.person((month, interpreter_id, NO_ORGANIZATION, NO_SITE))
                row.online_s += seconds

    async def write(self) -> None:
        for key, lists in self.lists.items():
            row = self.requests[key]
            for name, values in lists.items():
                if isinstance(values, dict):
                    values = {str(s): n for s, n in sorted(values.items())}
                setattr(row, name, json.dumps(values, separators=(",", ":")))
            self.session.add(row)
        for person in self.people.values():
            self.session.add(person)
        await self.session.flush()


def _count(counts: Histogram, millis: int) -> None:
    seconds = (millis + 999) // 1000
    counts[seconds] = counts.get(seconds, 0) + 1


def _offers_of(*conditions: Any) -> Any:
    return (
        select(
            OFFER.interpreter_id, OFFER.created_at, OFFER.state, REQ.organization_id, REQ.site_id
        )
        .select_from(OFFERS.join(REQUESTS, REQ.id == OFFER.request_id))
        .where(*conditions)
    )


def _calls_of(*conditions: Any) -> Any:
    return select(
        CALL.interpreter_id, CALL.organization_id, CALL.site_id, CALL.connected_at, CALL.ended_at
    ).where(CALL.connected_at.is_not(None), CALL.ended_at.is_not(None), *conditions)


async def summarise_requests(
    session: AsyncSession, request_ids: Sequence[str], zone: ZoneInfo
) -> None:
    """Add these requests, their offers and their calls to the summaries of months not
    sealed yet (retention's purge, before it deletes them)."""
    conn = await session.connection()
    sums = _Sums(session, zone, await sealed_months(session))
    await sums.add_requests((await conn.execute(request_facts(REQ.id.in_(request_ids)))).all())
    await sums.add_offers((await conn.execute(_offers_of(OFFER.request_id.in_(request_ids)))).all())
    await sums.add_calls((await conn.execute(_calls_of(CALL.request_id.in_(request_ids)))).all())
    await sums.write()


async def summarise_intervals(
    session: AsyncSession, interval_ids: Sequence[str], zone: ZoneInfo
) -> None:
    """Add these ended online intervals to the summaries of months not sealed yet."""
    conn = await session.connection()
    sums = _Sums(session, zone, await sealed_months(session))
    rows = await conn.execute(
        select(ONLINE.interpreter_id, ONLINE.started_at, ONLINE.ended_at).where(
            ONLINE.id.in_(interval_ids), ONLINE.ended_at.is_not(None)
        )
    )
    for interpreter_id, started_at, ended_at in rows.all():
        await sums.add_online(interpreter_id, started_at, ended_at)
    await sums.write()


async def _month_rows(db: Database, month: str, zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    """A closed month's rows, read outside any write: they no longer change."""
    start, end = month_bounds(month, zone)
    span = [(start, end)]
    async with db.read() as session:
        conn = await session.connection()
        rows: dict[str, Any] = {
            "requests": (
                await conn.execute(request_facts(within(REQ.created_at, span), ranges=span))
            ).all(),
            "offers": (await conn.execute(_offers_of(within(OFFER.created_at, span)))).all(),
            "calls": (await conn.execute(_calls_of(within(CALL.connected_at, span)))).all(),
        }
        intervals = await conn.execute(
            select(ONLINE.interpreter_id, ONLINE.started_at, ONLINE.ended_at).where(
                ONLINE.started_at < at(end),
                (ONLINE.ended_at.is_(None)) | (ONLINE.ended_at > at(start)),
            )
        )
        rows["online"] = [
            (who, max(began, start), min(ended or now, end)) for who, began, ended in intervals
        ]
    return rows


async def _seal(db: Database, month: str, zone: ZoneInfo, now: datetime) -> None:
    rows = await _month_rows(db, month, zone, now)
    # The write holds SQLite's one writer: it only adds up what was read and writes the sums.
    async with db.write() as session:
        sums = _Sums(session, zone, set())
        await sums.load(month)
        await sums.add_requests(rows["requests"])
        await sums.add_offers(rows["offers"])
        await sums.add_calls(rows["calls"])
        for who, began, ended in rows["online"]:
            await sums.add_online(who, began, ended)
        await sums.write()
        session.add(SealedMonth(month=month, sealed_at=now))


async def seal_months(db: Database, now: datetime, zone: ZoneInfo) -> list[str]:
    """Seal every month that ended at least SEAL_AFTER ago and holds rows, oldest first,
    each in one transaction; returns the months sealed."""
    async with db.read() as session:
        conn = await session.connection()
        oldest = [
            (await conn.execute(select(func.min(REQ.created_at)))).scalar(),
            (await conn.execute(select(func.min(ONLINE.started_at)))).scalar(),
        ]
        done = await sealed_months(session)
    firsts = [moment for moment in oldest if moment is not None]
    if not firsts:
        return []
    month = month_of(min(firsts), zone)
    sealed: list[str] = []
    while True:
        end = month_bounds(month, zone)[1]
        if end + SEAL_AFTER > now:
            return sealed
        if month not in done:
            await _seal(db, month, zone, now)
            sealed.append(month)
        month = month_of(end, zone)


async def request_months(
    session: AsyncSession, months: Sequence[str], where: StatsFilter | None = None
) -> list[RequestMonth]:
    """The request summaries of these months (of the organisation, language and site
    `where` asks for)."""
    if not months:
        return []
    query = model_select(RequestMonth).where(col(RequestMonth.month).in_(months))
    if where is not None:
        query = query.where(*where.matching(RequestMonth))
    return list((await session.exec(query)).all())


async def interpreter_months(
    session: AsyncSession,
    months: Sequence[str],
    organization_id: str | None,
    site_id: str | None = None,
) -> list[InterpreterMonth]:
    """The interpreter summaries of these months: online time, and calls and offers of the
    organisation asked for (or of every one)."""
    if not months:
        return []
    query = model_select(InterpreterMonth).where(col(InterpreterMonth.month).in_(months))
    if organization_id is not None:
        query = query.where(
            col(InterpreterMonth.organization_id).in_([organization_id, NO_ORGANIZATION])
        )
    if site_id is not None:
        # Online time belongs to no organisation and no site: it stays in.
        query = query.where(
            or_(
                col(InterpreterMonth.organization_id) == NO_ORGANIZATION,
                col(InterpreterMonth.site_id) == site_id,
            )
        )
    return list((await session.exec(query)).all())
