"""HTTP handlers of the service-level figures: JSON for the page, CSV for the city's own
reporting. Management ("Leitung") and admins read them; nobody changes anything here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import service as accounts
from accounts import sites
from accounts.models import Role
from accounts.views import OrganizationView
from billing.export import Dialect
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.errors import InvalidInput
from infra.fields import made_from
from infra.http import json_response
from infra.openapi import ApiRoutes
from infra.period import PeriodParams, check_period, parse_bounds
from interpreters.languages import normalize_tag
from stats import report
from stats.figures import StatsFilter
from stats.tables import csv_table

api = ApiRoutes(tag="stats")
READERS = (Role.MANAGEMENT, Role.ADMIN)
JSON_OR_CSV = ("application/json", "text/csv")
"""What the figures come as: `format=csv` asks for a table."""
DEFAULT_DAYS = 30
MAX_DAYS = 400
"""The longest period one request may ask for (a year and some)."""


class LiveQuery(BaseModel):
    organization: str | None = Field(default=None, max_length=32, description="Organisation id")


class PeriodQuery(PeriodParams, LiveQuery):
    """Without `to` the period ends now; without `from`, it starts 30 days before `to`."""

    format: Literal["json", "csv"] = "json"
    dialect: Dialect = Field(
        default=None, description="`de`: semicolons, decimal comma, UTF-8 BOM (CSV only)"
    )
    site: str | None = Field(default=None, max_length=32, description="Site id")


class StatsQuery(PeriodQuery):
    language: str | None = Field(default=None, max_length=35, description="Language tag")


class InterpreterQuery(PeriodQuery):
    group_by: Literal["interpreter", "agency"] = "interpreter"


class LanguageRow(BaseModel):
    language: str
    requests: int
    answered: int
    within_30s: int
    within_2min: int
    within_5min: int
    expired: int
    cancelled: int
    failed: int
    waiting: int
    accept_p50_s: int | None
    accept_p90_s: int | None
    connect_p50_s: int | None
    connect_p90_s: int | None


class HeatCell(BaseModel):
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    hour: int = Field(description="Local hour, 0-23")
    requests: int
    unanswered: int


class InterpreterRow(BaseModel):
    interpreter_id: str | None = None
    number: int | None = None
    name: str | None = None
    agency: str
    interpreters: int | None = None
    online_s: int
    talk_s: int
    utilisation: float | None
    calls: int
    offers: int
    declined: int
    rang_out: int


class Figures(BaseModel):
    from_: str = Field(alias="from")
    to: str
    time_zone: str
    approximate: bool = Field(
        description="Always false: figures from rows and from monthly summaries are alike"
    )


class LanguageFigures(Figures):
    rows: list[LanguageRow]


class HeatMapFigures(Figures):
    rows: list[HeatCell]


class InterpreterFigures(Figures):
    rows: list[InterpreterRow]


class LiveLanguage(BaseModel):
    language: str
    waiting: int
    longest_wait_s: int | None
    online: int
    available: int


class LiveFigures(BaseModel):
    at: str
    calls_live: int
    languages: list[LiveLanguage]


def _filter(request: web.Request, query: PeriodQuery) -> StatsFilter:
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    now = request.app[CLOCK].now()
    start, end = parse_bounds(query.from_, query.to, zone)
    end = end or now
    start = start or end - timedelta(days=DEFAULT_DAYS)
    check_period(start, end)
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput(
            f"to: a period of at most {MAX_DAYS} days",
            field="to",
            problem_code="period_too_long",
        )
    tag = getattr(query, "language", None)
    language = normalize_tag(tag, "language") if tag else None
    return StatsFilter(start, end, query.organization, language, query.site)


async def _read(
    request: web.Request,
    query: PeriodQuery,
    read: Callable[[AsyncSession, StatsFilter, ZoneInfo], Awaitable[report.Report]],
) -> tuple[StatsFilter, report.Report]:
    """The period the query asks for and its figures, read in the centre's time zone."""
    where = _filter(request, query)
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[DATABASE].read() as session:
        return where, await read(session, where, zone)


def _answer(
    request: web.Request,
    name: str,
    query: PeriodQuery,
    where: StatsFilter,
    columns: tuple[str, ...],
    found: report.Report,
) -> web.Response:
    if query.format == "csv":
        stamp = f"{where.start:%Y%m%dT%H%MZ}_{where.end:%Y%m%dT%H%MZ}"
        return web.Response(
            body=csv_table(columns, found.rows, query.dialect),
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="stats-{name}-{stamp}.csv"',
            },
        )
    body: dict[str, Any] = {
        "from": where.start,
        "to": where.end,
        "time_zone": request.app[SETTINGS].timezone,
        "approximate": found.approximate,
        "rows": found.rows,
    }
    return json_response(body)


@api.get("/api/stats/languages", roles=READERS, response=LanguageFigures, content_types=JSON_OR_CSV)
async def languages(request: web.Request, query: StatsQuery) -> web.Response:
    """Per language: requests, answered within 30 s / 2 min / 5 min, unanswered, and the median and
    90th percentile of the time to accept and to connect"""
    where, found = await _read(request, query, report.languages)
    return _answer(request, "languages", query, where, report.LANGUAGE_COLUMNS, found)


@api.get("/api/stats/heatmap", roles=READERS, response=HeatMapFigures, content_types=JSON_OR_CSV)
async def heat_map(request: web.Request, query: StatsQuery) -> web.Response:
    """Requests and unanswered requests per weekday and local hour (when to staff)"""
    where, found = await _read(request, query, report.heat_map)
    return _answer(request, "heatmap", query, where, report.HEAT_COLUMNS, found)


@api.get(
    "/api/stats/interpreters", roles=READERS, response=InterpreterFigures, content_types=JSON_OR_CSV
)
async def interpreters(request: web.Request, query: InterpreterQuery) -> web.Response:
    """Per interpreter or agency: online hours, talk time, utilisation, calls, offers declined or
    let ring out"""
    now: datetime = request.app[CLOCK].now()

    def read(session: AsyncSession, where: StatsFilter, zone: ZoneInfo) -> Awaitable[report.Report]:
        return report.interpreters(session, where, zone, now)

    where, found = await _read(request, query, read)
    if query.group_by == "agency":
        return _answer(
            request, "agencies", query, where, report.AGENCY_COLUMNS, report.agencies(found)
        )
    return _answer(request, "interpreters", query, where, report.INTERPRETER_COLUMNS, found)


@api.get("/api/stats/live", roles=READERS, response=LiveFigures)
async def live(request: web.Request, query: LiveQuery) -> web.Response:
    """Now: requests waiting per language and the longest wait, calls live, interpreters online and
    available per language"""
    async with request.app[DATABASE].read() as session:
        figures = await report.live(session, request.app[CLOCK].now(), query.organization)
    return json_response(figures)


class OrganizationChoices(BaseModel):
    organizations: list[OrganizationView]


@api.get("/api/stats/organizations", roles=READERS)
async def organizations(request: web.Request) -> OrganizationChoices:
    """The organisations the figures may be filtered by (id and name)"""
    async with request.app[DATABASE].read() as session:
        found = await accounts.list_organizations(session)
    return OrganizationChoices(organizations=[made_from(OrganizationView, o) for o in found])


class SiteChoice(BaseModel):
    id: str
    organization_id: str
    name: str
    active: bool


class SiteChoices(BaseModel):
    sites: list[SiteChoice]


@api.get("/api/stats/sites", roles=READERS)
async def site_choices(request: web.Request) -> SiteChoices:
    """The sites the figures may be filtered by (deactivated ones too: they have a past)"""
    async with request.app[DATABASE].read() as session:
        found = await sites.list_sites(session)
    return SiteChoices(sites=[made_from(SiteChoice, s) for s in found])
