"""Usage totals: per organisation, language, interpreter or month, and the monthly
statement of one organisation. Services take the session and never commit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal_column, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.errors import UnknownOrganization
from accounts.models import Organization
from billing.export import UsageFilter, record_order
from billing.models import UsageRecord
from billing.rules import call_reference, consultation_reference
from infra.errors import InvalidInput

GroupBy = Literal["organization", "site", "language", "interpreter", "month"]

_T = UsageRecord.__table__.c  # type: ignore[attr-defined]


def month_starts(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """The starts (in UTC) of every local month from the one of `first` to after `last`."""
    local = first.astimezone(zone)
    year, month = local.year, local.month
    starts: list[datetime] = []
    while True:
        start = datetime(year, month, 1, tzinfo=zone).astimezone(UTC)
        starts.append(start)
        if start > last:
            return starts
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


async def _month_key(
    session: AsyncSession, conditions: list[ColumnElement[bool]], zone: ZoneInfo
) -> Any:
    """The local month of each record as a CASE over month starts (None: no records).

    SQLite has no time zones; this way both databases group by the same rule.
    """
    conn = await session.connection()
    bounds = (
        await conn.execute(
            select(func.min(_T.connected_at), func.max(_T.connected_at)).where(*conditions)
        )
    ).one()
    if bounds[0] is None:
        return None
    starts = month_starts(bounds[0], bounds[1], zone)
    return case(
        *[
            (_T.connected_at < nxt, start.astimezone(zone).strftime("%Y-%m"))
            for start, nxt in itertools.pairwise(starts)
        ],
        else_=starts[-1].astimezone(zone).strftime("%Y-%m"),
    )


_NAMED = {
    "organization": (_T.organization_id, _T.organization, _T.cost_center),
    "interpreter": (_T.interpreter_id, _T.interpreter, None),
    # Records of no site are one group, keyed "".
    "site": (func.coalesce(_T.site_id, literal_column("''")), _T.site, None),
    "language": (_T.language, None, None),
}


async def grouped_totals(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    keys: dict[str, Any],
) -> list[Any]:
    """Calls, billable seconds, amounts, calls without a tariff and staff calls (with their
    billable seconds) per value of `keys`
    (label -> expression) and currency, in key order; text keys also get their newest-
    sorting value (`max`), for names that changed."""
    # Group over a subquery: PostgreSQL does not see a CASE with bound parameters in
    # GROUP BY as the same expression as the one in the select list.
    # A staff call without an in-house tariff is free by design, not a missing tariff.
    untariffed = case((and_(_T.tariff_id.is_(None), _T.in_house.is_(False)), 1), else_=0)
    staff = case((_T.in_house.is_(True), 1), else_=0)
    staff_s = case((_T.in_house.is_(True), _T.billable_s), else_=0)
    inner = (
        select(
            *(expr.label(label) for label, expr in keys.items()),
            _T.currency,
            _T.billable_s,
            _T.amount_cents,
            untariffed.label("untariffed"),
            staff.label("in_house"),
            staff_s.label("in_house_s"),
        )
        .where(*conditions)
        .subquery()
    )
    group = [inner.c[label] for label in keys if not label.startswith("max_")]
    latest = [func.max(inner.c[label]).label(label) for label in keys if label.startswith("max_")]
    query = (
        select(
            *group,
            inner.c.currency,
            *latest,
            func.count().label("calls"),
            func.sum(inner.c.billable_s).label("billable_s"),
            func.sum(inner.c.amount_cents).label("amount_cents"),
            func.sum(inner.c.untariffed).label("untariffed_calls"),
            func.sum(inner.c.in_house).label("in_house_calls"),
            func.sum(inner.c.in_house_s).label("in_house_billable_s"),
        )
        .group_by(*group, inner.c.currency)
        .order_by(*group, inner.c.currency)
    )
    return list((await (await session.connection()).execute(query)).all())


async def usage_summary(
    session: AsyncSession, usage: UsageFilter, group_by: GroupBy, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Calls, billable seconds, amounts and calls without a tariff per group and currency,
    in key order. Organisation and interpreter groups also carry `name` (the newest-sorting
    name the records hold for that id); organisation groups their `cost_center`."""
    conditions = usage.conditions()
    if group_by == "month":
        month = await _month_key(session, conditions, zone)
        if month is None:
            return []
        key, name, cost_center = month, None, None
    else:
        key, name, cost_center = _NAMED[group_by]
    keys: dict[str, Any] = {"key": key}
    if name is not None:
        keys["max_name"] = name
    if cost_center is not None:
        keys["max_cost_center"] = cost_center
    groups: list[dict[str, Any]] = []
    for row in await grouped_totals(session, conditions, keys):
        group: dict[str, Any] = {
            "key": row.key,
            "calls": int(row.calls),
            "billable_s": int(row.billable_s),
            "amount_cents": int(row.amount_cents),
            "currency": row.currency,
            "untariffed_calls": int(row.untariffed_calls),
            "in_house_calls": int(row.in_house_calls),
            "in_house_billable_s": int(row.in_house_billable_s),
        }
        if name is not None:
            group["name"] = row.max_name
        if cost_center is not None:
            group["cost_center"] = row.max_cost_center
        groups.append(group)
    return groups


def month_period(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a local month `YYYY-MM`; a 422 naming `month` otherwise."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=zone)
        after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    except ValueError:
        raise InvalidInput(
            "month: give a month as 2026-11", field="month", problem_code="bad_month"
        ) from None
    return start.astimezone(UTC), after.astimezone(UTC)


_SEGMENT_FIELDS = (
    "connected_at",
    "ended_at",
    "language",
    "interpreter",
    "billable_s",
    "amount_cents",
    "currency",
    "tariff",
    "end_reason",
)


def _add_to_totals(totals: dict[str, dict[str, Any]], line: dict[str, Any], count: str) -> None:
    """Add a line's count (`calls` or 1 segment), billable seconds and amount to the total
    of its currency."""
    total = totals.setdefault(
        line["currency"],
        {"currency": line["currency"], count: 0, "billable_s": 0, "amount_cents": 0},
    )
    total[count] += line.get(count, 1)
    total["billable_s"] += line["billable_s"]
    total["amount_cents"] += line["amount_cents"]


async def consultations(session: AsyncSession, usage: UsageFilter) -> list[dict[str, Any]]:
    """The consultations among a filter's records, in export order: each with its
    interpreter segments in time order and its totals per currency."""
    columns = [getattr(_T, name) for name in _SEGMENT_FIELDS]
    query = (
        select(_T.room_id, _T.call_id, *columns)
        .where(*usage.conditions(), _T.room_id.is_not(None))
        .order_by(*record_order())
    )
    rows = (await (await session.connection()).execute(query)).all()
    found: list[dict[str, Any]] = []
    # The order holds each consultation's segments together.
    for room_id, segments in itertools.groupby(rows, key=lambda row: row.room_id):
        totals: dict[str, dict[str, Any]] = {}
        lines = []
        for row in segments:
            line = {name: getattr(row, name) for name in _SEGMENT_FIELDS}
            line["call_ref"] = call_reference(row.call_id)
            _add_to_totals(totals, line, "segments")
            lines.append(line)
        found.append(
            {
                "room_id": room_id,
                "consultation_ref": consultation_reference(room_id),
                "segments": lines,
                "totals": sorted(totals.values(), key=lambda t: t["currency"]),
            }
        )
    return found


async def statement(
    session: AsyncSession, organization_id: str, month: str, zone: ZoneInfo
) -> dict[str, Any]:
    """The statement of one organisation and local month (`YYYY-MM`): its lines per
    language and tariff, totals per currency, the calls without a tariff, and its
    consultations with their interpreter segments."""
    start, end = month_period(month, zone)
    usage = UsageFilter(start, end, organization_id=organization_id)
    org = await session.get(Organization, organization_id)
    if org is None:
        raise UnknownOrganization(field="organization")
    keys = {"language": _T.language, "tariff": _T.tariff}
    lines = [
        {
            "language": row.language,
            "tariff": row.tariff,
            "calls": int(row.calls),
            "billable_s": int(row.billable_s),
            "amount_cents": int(row.amount_cents),
            "currency": row.currency,
            "untariffed_calls": int(row.untariffed_calls),
        }
        for row in await grouped_totals(session, usage.conditions(), keys)
    ]
    totals: dict[str, dict[str, Any]] = {}
    for line in lines:
        _add_to_totals(totals, line, "calls")
    return {
        "organization": {"id": org.id, "name": org.name, "cost_center": org.cost_center},
        "month": month,
        "first_day": start.astimezone(zone).date(),
        "last_day": (end.astimezone(zone) - timedelta(days=1)).date(),
        "lines": lines,
        "totals": sorted(totals.values(), key=lambda t: t["currency"]),
        "untariffed_calls": sum(line["untariffed_calls"] for line in lines),
        "consultations": await consultations(session, usage),
    }
