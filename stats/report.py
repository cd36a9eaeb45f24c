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
from stats.figures import WITHIN, StatsFilter
from stats.sql import HOURS_OF_WEEK

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
INTERPRETER_COLUMNS = (
    "interpreter_id",
    "number",
    "name",
    "agency",
    "online_s",
    "talk_s",
    "utilisation",
    "calls",
    "offers",
    "declined",
    "rang_out",
)
AGENCY_COLUMNS = (
    "agency",
    "interpreters",
    "online_s",
    "talk_s",
    "utilisation",
    "calls",
    "offers",
    "declined",
    "rang_out",
)
_COUNTS = ("requests", "answered", *WITHIN, "expired", "cancelled", "failed")


@dataclass(frozen=True, slots=True)
class Report:
    """Rows of one figure, and whether summarised months made percentiles approximate."""

    rows: list[dict[str, Any]]
    approximate: bool = False


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


async def languages(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Report:
    """Per language: requests, answered within 30 s / 2 min / 5 min, unanswered, waiting,
    and the median and 90th percentile of the time to accept and to connect."""
    raw = {row["language"]: row for row in await figures.language_rows(session, where)}
    months = await summaries.request_months(session, where, zone)
    rows: dict[str, dict[str, Any]] = {}
    for language, row in raw.items():
        rows[language] = {name: int(row[name] or 0) for name in (*_COUNTS, "waiting")}
        for kind in ("accept", "connect"):
            for p in (50, 90):
                rows[language][f"{kind}_p{p}_s"] = _seconds(row[f"{kind}_p{p}"])
    if months:
        _add_months(rows, months)
        histograms = await figures.wait_histograms(session, where)
        for month in months:
            for kind in ("accept", "connect"):
                counts = histograms.setdefault(
                    (month.language, kind), [0] * (len(figures.HISTOGRAM_EDGES_S) + 1)
                )
                for i, n in enumerate(summaries.histogram(month, kind)):
                    counts[i] += n
        for (language, kind), counts in histograms.items():
            for p in (50, 90):
                rows[language][f"{kind}_p{p}_s"] = figures.histogram_percentile(counts, p)
    ordered = [{"language": tag, **rows[tag]} for tag in sorted(rows)]
    return Report([{c: r.get(c) for c in LANGUAGE_COLUMNS} for r in ordered], bool(months))


def _add_months(rows: dict[str, dict[str, Any]], months: list[Any]) -> None:
    for month in months:
        row = rows.setdefault(month.language, {**dict.fromkeys((*_COUNTS, "waiting"), 0)})
        for name in _COUNTS:
            row[name] += getattr(month, name)


async def heat_map(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Report:
    """Requests and unanswered requests per weekday (0 = Monday) and local hour."""
    demand, unanswered = await figures.heat_map(session, where, zone)
    months = await summaries.request_months(session, where, zone)
    for month in months:
        for hour, (d, u) in enumerate(
            zip(
                summaries.by_hour(month, "demand"),
                summaries.by_hour(month, "unanswered"),
                strict=True,
            )
        ):
            demand[hour] += d
            unanswered[hour] += u
    rows = [
        {"weekday": h // 24, "hour": h % 24, "requests": demand[h], "unanswered": unanswered[h]}
        for h in range(HOURS_OF_WEEK)
    ]
    return Report(rows, bool(months))


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
    online_until = min(now, where.end)
    for who, seconds in (
        await figures.online_seconds(session, where.start, where.end, online_until)
    ).items():
        totals[who]["online_s"] += seconds
    for who, (calls, talk) in (await figures.call_figures(session, where, now)).items():
        totals[who]["calls"] += calls
        totals[who]["talk_s"] += talk
    for who, (offers, declined, rang_out) in (await figures.offer_figures(session, where)).items():
        totals[who]["offers"] += offers
        totals[who]["declined"] += declined
        totals[who]["rang_out"] += rang_out
    for month in await summaries.interpreter_months(session, where, zone):
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
    return Report(rows, per_interpreter.approximate)


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
