"""The figures as the API shows them: raw rows and monthly summaries added up, per
language, per hour of the week, per interpreter or agency, and live."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import User
from interpreters import service as roster
from interpreters.models import Interpreter
from stats import figures, summaries
from stats.figures import COUNTS, StatsFilter
from stats.sql import HOURS_OF_WEEK, month_bounds, months_within

LANGUAGE_COLUMNS = (
    "language",
    "requests",
    "answered",
    "within_30s",
    "within_2min",
    "within_5min",
    "expired",
    "cancelled",
    "failed",
    "waiting",
    "accept_p50_s",
    "accept_p90_s",
    "connect_p50_s",
    "connect_p90_s",
)
HEAT_COLUMNS = ("weekday", "hour", "requests", "unanswered")
_WORK_COLUMNS = ("online_s", "talk_s", "utilisation", "calls", "offers", "declined", "rang_out")
"""What an interpreter's row and an agency's row both count."""
INTERPRETER_COLUMNS = ("interpreter_id", "number", "name", "agency", *_WORK_COLUMNS)
AGENCY_COLUMNS = ("agency", "interpreters", *_WORK_COLUMNS)


@dataclass(frozen=True, slots=True)
class Report:
    """Rows of one figure. `approximate` stays false: raw rows and summaries both keep
    waits in whole seconds, so percentiles come out alike (kept for clients that read it)."""

    rows: list[dict[str, Any]]
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a period's figures come from: raw rows in `ranges`, summaries of `months`."""

    ranges: list[tuple[datetime, datetime]]
    months: list[str]


async def plan(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Plan:
    """Months wholly in the period come from their summaries (all of a sealed month; what
    retention purged of another), the rest of the period from raw rows."""
    months = months_within(where.start, where.end, zone)
    sealed = await summaries.sealed_months(session)
    ranges: list[tuple[datetime, datetime]] = []
    cursor = where.start
    for month in months:
        if month in sealed:
            first, following = month_bounds(month, zone)
            if cursor < first:
                ranges.append((cursor, first))
            cursor = following
    if cursor < where.end:
        ranges.append((cursor, where.end))
    return Plan(ranges, months)


async def languages(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Report:
    """Per language: requests, answered within 30 s / 2 min / 5 min, unanswered, waiting,
    and the median and 90th percentile of the time to accept and to connect."""
    part = await plan(session, where, zone)
    rows, waits = await figures.language_figures(session, where, part.ranges)
    for month in await summaries.request_months(session, part.months, where):
        row = rows.setdefault(month.language, dict.fromkeys((*COUNTS, "waiting"), 0))
        for name in COUNTS:
            row[name] += getattr(month, name)
        for kind in ("accept", "connect"):
            counts = waits.setdefault((month.language, kind), {})
            for seconds, n in summaries.histogram(month, kind).items():
                counts[seconds] = counts.get(seconds, 0) + n
    found = []
    for language in sorted(rows):
        line: dict[str, Any] = {"language": language, **rows[language]}
        for kind in ("accept", "connect"):
            for p in (50, 90):
                line[f"{kind}_p{p}_s"] = figures.nearest_rank(waits.get((language, kind), {}), p)
        found.append({c: line.get(c) for c in LANGUAGE_COLUMNS})
    return Report(found)


async def heat_map(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Report:
    """Requests and unanswered requests per weekday (0 = Monday) and local hour."""
    part = await plan(session, where, zone)
    demand, unanswered = await figures.heat_map(session, where, part.ranges, zone)
    for month in await summaries.request_months(session, part.months, where):
        missed = summaries.by_hour(month, "unanswered")
        for hour, count in enumerate(summaries.by_hour(month, "demand")):
            demand[hour] += count
            unanswered[hour] += missed[hour]
    rows = [
        {"weekday": h // 24, "hour": h % 24, "requests": demand[h], "unanswered": unanswered[h]}
        for h in range(HOURS_OF_WEEK)
    ]
    return Report(rows)


def _utilisation(talk_s: float, online_s: float) -> float | None:
    return round(talk_s / online_s, 3) if online_s > 0 else None


async def interpreters(
    session: AsyncSession, where: StatsFilter, zone: ZoneInfo, now: datetime
) -> Report:
    """Per interpreter: online hours, talk time, utilisation (talk / online), calls, and
    offers declined or let ring out."""
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(("online_s", "talk_s", "calls", "offers", "declined", "rang_out"), 0)
    )
    part = await plan(session, where, zone)
    for who, seconds in (await figures.online_seconds(session, part.ranges, now)).items():
        totals[who]["online_s"] += seconds
    for who, (calls, talk) in (
        await figures.call_figures(session, where, part.ranges, now)
    ).items():
        totals[who]["calls"] += calls
        totals[who]["talk_s"] += talk
    for who, (offers, declined, rang_out) in (
        await figures.offer_figures(session, where, part.ranges)
    ).items():
        totals[who]["offers"] += offers
        totals[who]["declined"] += declined
        totals[who]["rang_out"] += rang_out
    for month in await summaries.interpreter_months(
        session, part.months, where.organization_id, where.site_id
    ):
        t = totals[month.interpreter_id]
        for name in t:
            t[name] += getattr(month, name)
    people = await _people(session, list(totals))
    rows = []
    for who, t in totals.items():
        number, name, agency = people.get(who, (None, "", ""))
        rows.append(
            {
                "interpreter_id": who,
                "number": number,
                "name": name,
                "agency": agency,
                "online_s": round(t["online_s"]),
                "talk_s": round(t["talk_s"]),
                "utilisation": _utilisation(t["talk_s"], t["online_s"]),
                **{k: int(t[k]) for k in ("calls", "offers", "declined", "rang_out")},
            }
        )
    rows.sort(key=lambda r: (str(r["name"]).casefold(), str(r["interpreter_id"])))
    return Report(rows)


async def _people(session: AsyncSession, ids: list[str]) -> dict[str, tuple[int | None, str, str]]:
    if not ids:
        return {}
    found = await session.exec(
        select(Interpreter.user_id, Interpreter.number, User.display_name, Interpreter.agency)
        .join(User, col(User.id) == col(Interpreter.user_id))
        .where(col(Interpreter.user_id).in_(ids))
    )
    return {who: (number, name, agency or "") for who, number, name, agency in found.all()}


def agencies(per_interpreter: Report) -> Report:
    """The interpreters' figures summed per agency (no agency: `""`)."""
    groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in per_interpreter.rows:
        group = groups[row["agency"]]
        group["interpreters"] += 1
        for name in ("online_s", "talk_s", "calls", "offers", "declined", "rang_out"):
            group[name] += row[name]
    rows = [
        {
            "agency": agency,
            **{k: int(g[k]) for k in ("interpreters", "online_s", "talk_s")},
            "utilisation": _utilisation(g["talk_s"], g["online_s"]),
            **{k: int(g[k]) for k in ("calls", "offers", "declined", "rang_out")},
        }
        for agency, g in sorted(groups.items())
    ]
    return Report(rows)


async def live(session: AsyncSession, now: datetime, organization_id: str | None) -> dict[str, Any]:
    """Now: requests waiting per language with the longest wait, calls live, and the
    interpreters online and available per roster language."""
    waiting = await figures.waiting_now(session, now, organization_id)
    counts = await roster.language_counts(session)
    languages = sorted(set(waiting) | set(counts))
    return {
        "at": now,
        "calls_live": await figures.calls_live(session, organization_id),
        "languages": [
            {
                "language": tag,
                "waiting": waiting.get(tag, (0, 0.0))[0],
                "longest_wait_s": round(waiting[tag][1]) if tag in waiting else None,
                "online": counts[tag].online if tag in counts else 0,
                "available": counts[tag].available if tag in counts else 0,
            }
            for tag in languages
        ],
    }
