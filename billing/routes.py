"""HTTP handlers of billing: tariff administration, the usage export and its summary."""

from __future__ import annotations

import contextlib
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from accounts.access import ADMIN, audited_change
from accounts.audit import Action, Target
from accounts.models import Role
from accounts.views import Identity
from billing import tariffs
from billing.export import (
    CONTENT_TYPES,
    Dialect,
    ExportFormat,
    ExportKind,
    UsageFilter,
    export_usage,
)
from billing.scope import (
    GrantView,
    ScopeView,
    grant,
    grant_views,
    list_grants,
    revoke,
    scope_view,
    usage_scope,
)
from billing.summary import GroupBy, statement, usage_summary
from billing.tables import Lang
from billing.tariffs import TariffView, tariff_view
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.http import json_response
from infra.openapi import ApiRoutes
from infra.period import PeriodParams, check_period, parse_bounds
from interpreters.languages import normalize_tag

api = ApiRoutes(tag="billing")
FINANCE = (Role.FINANCE, Role.ADMIN)

_CURRENCY = r"^[A-Za-z]{3}$"


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


class TariffBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    organization_id: str | None = Field(default=None, max_length=32)
    """The organisation this tariff is for; null for the default tariff."""
    languages: list[str] = Field(default_factory=list, max_length=50)
    """A language group (BCP 47 tags); empty for every language."""
    unit_s: int = Field(ge=1, le=86400)
    minimum_s: int = Field(default=0, ge=0, le=86400)
    price_per_unit_cents: int = Field(ge=0, le=10_000_000)
    currency: str = Field(default="EUR", pattern=_CURRENCY)
    valid_from: date
    in_house: bool = False
    """Bills the calls interpreted by in-house staff (no tariff of theirs: they cost 0)."""

    _currency = field_validator("currency")(_upper)


class TariffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    organization_id: str | None = Field(default=None, max_length=32)
    languages: list[str] | None = Field(default=None, max_length=50)
    unit_s: int | None = Field(default=None, ge=1, le=86400)
    minimum_s: int | None = Field(default=None, ge=0, le=86400)
    price_per_unit_cents: int | None = Field(default=None, ge=0, le=10_000_000)
    currency: str | None = Field(default=None, pattern=_CURRENCY)
    valid_from: date | None = None
    in_house: bool | None = None

    _currency = field_validator("currency")(_upper)


class TariffResponse(BaseModel):
    tariff: TariffView


class TariffList(BaseModel):
    tariffs: list[TariffView]


class TariffListQuery(BaseModel):
    organization_id: str | None = Field(default=None, max_length=32)


@api.get("/api/admin/tariffs", roles=ADMIN)
async def list_tariffs(request: web.Request, query: TariffListQuery) -> TariffList:
    """List tariffs"""
    async with request.app[DATABASE].read() as session:
        rows = await tariffs.list_tariffs(session, query.organization_id)
    return TariffList(tariffs=[tariff_view(t) for t in rows])


@api.post("/api/admin/tariffs", roles=ADMIN, status=201)
async def create_tariff(
    request: web.Request, identity: Identity, body: TariffBody
) -> TariffResponse:
    """Add a tariff"""
    values = body.model_dump(exclude={"languages"})
    async with audited_change(request, identity) as change:
        tariff = await tariffs.create_tariff(change.session, values, body.languages, change.now)
        await change.record(
            Action.TARIFF_CREATED,
            Target("tariff", tariff.id, tariff.name),
            **body.model_dump(mode="json"),
        )
    return TariffResponse(tariff=tariff_view(tariff))


@api.patch("/api/admin/tariffs/{tariff_id}", roles=ADMIN, errors=(404,))
async def update_tariff(
    request: web.Request, identity: Identity, tariff_id: str, body: TariffPatch
) -> TariffResponse:
    """Edit a tariff (calls already ended keep what they were billed)"""
    changes = body.model_dump(exclude_unset=True, exclude={"languages"})
    async with audited_change(request, identity) as change:
        tariff = await tariffs.update_tariff(change.session, tariff_id, changes, body.languages)
        await change.record(
            Action.TARIFF_CHANGED,
            Target("tariff", tariff.id, tariff.name),
            **body.model_dump(mode="json", exclude_unset=True),
        )
    return TariffResponse(tariff=tariff_view(tariff))


class UsageQuery(PeriodParams):
    """Without `from` the usage starts with the first call; without `to`, ends with the last."""

    organization: str | None = Field(default=None, max_length=32, description="Organisation id")
    language: str | None = Field(default=None, max_length=35, description="Language tag")
    interpreter: str | None = Field(default=None, max_length=32, description="Interpreter id")
    site: str | None = Field(default=None, max_length=32, description="Site id")


class ExportQuery(UsageQuery):
    format: ExportFormat = "json"
    dialect: Dialect = Field(
        default=None,
        description="`de` (CSV only): for German Excel: German headers, local times, "
        "language names, minutes, semicolons, decimal comma, UTF-8 BOM",
    )
    lang: Lang = Field(
        default="de", description="Language of the XLSX headers and of the file name"
    )


class SummaryQuery(UsageQuery):
    group_by: GroupBy = "organization"


class UsageRecordView(BaseModel):
    """One usage record as the JSON export shows it (CSV and XLSX add `amount`)."""

    call_id: str
    connected_at: str
    ended_at: str
    duration_s: int
    billable_s: int
    amount_cents: int
    currency: str
    language: str
    organization_id: str
    organization: str
    cost_center: str
    counsellor_id: str
    interpreter_id: str
    interpreter: str
    tariff: str
    end_reason: str
    room_id: str | None
    """The consultation whose interpreter segment this record bills; null for a call."""
    call_ref: str
    """A short reference for people (`K7F3-A92Q`), as the finance page and the tables show it."""
    consultation_ref: str
    """The consultation's short reference for people; empty for an ordinary call."""
    site_id: str | None
    """Where the counsellor asked; null for no site."""
    site: str
    """The site's name when the call was billed; empty for no site."""


class UsageRecordList(RootModel[list[UsageRecordView]]):
    pass


class SummaryGroup(BaseModel):
    key: str
    calls: int
    billable_s: int
    amount_cents: int
    currency: str
    untariffed_calls: int
    """Calls of the group no tariff applied to (billed 0): a tariff is missing."""
    in_house_calls: int = 0
    """Of the calls, those interpreted by colleagues in the house (staff calls)."""
    in_house_billable_s: int = 0
    """Their billable seconds: what the centre did not buy from external interpreters."""
    name: str | None = None
    cost_center: str | None = None


class SummaryList(RootModel[list[SummaryGroup]]):
    pass


async def _scoped_filter(
    request: web.Request, query: UsageQuery, identity: Identity
) -> UsageFilter:
    """The query's filter, limited to the organisations the caller may see."""
    usage = _usage_filter(request, query)
    async with request.app[DATABASE].read() as session:
        scope = await usage_scope(session, identity)
    return scope.restrict(usage)


def _usage_filter(request: web.Request, query: UsageQuery) -> UsageFilter:
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    start, end = parse_bounds(query.from_, query.to, zone)
    check_period(start, end)
    language = query.language
    if language is not None:
        language = normalize_tag(language, "language")
    return UsageFilter(
        start, end, query.organization, language, query.interpreter, site_id=query.site
    )


_PERIOD_WORDS = {
    "de": ("tolk-nutzung", "ab", "bis", "alle"),
    "en": ("tolk-usage", "from", "until", "all"),
}


def _months(moment: datetime) -> int:
    return moment.year * 12 + moment.month


def _is_month(first: datetime, end: datetime) -> bool:
    """Whether [first, end) is one whole local month."""
    starts = [m.day == 1 and m.time() == datetime.min.time() for m in (first, end)]
    return all(starts) and _months(end) == _months(first) + 1


def export_filename(usage: UsageFilter, kind: ExportKind) -> str:
    """`tolk-nutzung-2026-11.csv`, `…-excel.csv`, `….xlsx`: the kind and the period (a
    month, or first and last day) in the server's time zone."""
    prefix, since, until, everything = _PERIOD_WORDS[kind.lang]
    first = usage.start.astimezone(kind.zone) if usage.start else None
    end = usage.end.astimezone(kind.zone) if usage.end else None
    # `to` is exclusive: the file names the last day it holds.
    last = end - timedelta(microseconds=1) if end else None
    if first and end and _is_month(first, end):
        period = f"{first:%Y-%m}"
    elif first and last:
        period = f"{first:%Y-%m-%d}_{last:%Y-%m-%d}"
    elif first:
        period = f"{since}-{first:%Y-%m-%d}"
    elif last:
        period = f"{until}-{last:%Y-%m-%d}"
    else:
        period = everything
    suffix = "-excel.csv" if kind.fmt == "csv" and kind.dialect else f".{kind.fmt}"
    return f"{prefix}-{period}{suffix}"


@api.get(
    "/api/usage",
    roles=FINANCE,
    response=UsageRecordList,
    content_types=(CONTENT_TYPES["json"], "text/csv", CONTENT_TYPES["xlsx"]),
)
async def export(
    request: web.Request, identity: Identity, query: ExportQuery
) -> web.StreamResponse:
    """Export usage records (streamed JSON, CSV or XLSX)"""
    usage = await _scoped_filter(request, query, identity)
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    fast = request.app[SETTINGS].fast_paths
    kind = ExportKind(query.format, query.dialect, query.lang, zone, fast_csv=fast)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[query.format]})
    if query.format != "json":
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{export_filename(usage, kind)}"'
        )
    async with audited_change(request, identity) as change:
        # Recorded before the first byte leaves: the rows sent go to `export_audit`.
        await change.record(
            Action.USAGE_EXPORTED,
            format=query.format,
            dialect=query.dialect,
            filters=json.loads(usage.describe()),
        )
    await response.prepare(request)
    # A client that goes away mid-export ends it; export_usage audits what was sent.
    with contextlib.suppress(ConnectionResetError):
        await export_usage(
            request.app[DATABASE],
            usage,
            kind,
            response.write,
            user_id=identity.user_id,
            now=request.app[CLOCK].now(),
            batch_rows=request.app[SETTINGS].usage_export_batch_rows,
        )
        await response.write_eof()
    return response


@api.get("/api/usage/summary", roles=FINANCE, response=SummaryList)
async def summary(request: web.Request, identity: Identity, query: SummaryQuery) -> web.Response:
    """Usage totals by organisation, language, interpreter or month"""
    usage = await _scoped_filter(request, query, identity)
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[DATABASE].read() as session:
        groups = await usage_summary(session, usage, query.group_by, zone)
    return json_response(groups)


class StatementQuery(BaseModel):
    organization: str = Field(min_length=1, max_length=32, description="Organisation id")
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="A month in the server's time zone")


class StatementOrganization(BaseModel):
    id: str
    name: str
    cost_center: str


class StatementLine(BaseModel):
    language: str
    tariff: str
    """The tariff's name; empty for calls no tariff applied to (billed 0)."""
    calls: int
    billable_s: int
    amount_cents: int
    currency: str
    untariffed_calls: int


class StatementTotal(BaseModel):
    currency: str
    calls: int
    billable_s: int
    amount_cents: int


class StatementSegment(BaseModel):
    connected_at: datetime
    ended_at: datetime
    language: str
    interpreter: str
    billable_s: int
    amount_cents: int
    currency: str
    tariff: str
    """Empty where no tariff applied (billed 0)."""
    end_reason: str
    call_ref: str


class StatementConsultationTotal(BaseModel):
    currency: str
    segments: int
    billable_s: int
    amount_cents: int


class StatementConsultation(BaseModel):
    """A consultation of the month: its interpreter segments in time order, its totals."""

    room_id: str
    consultation_ref: str
    segments: list[StatementSegment]
    totals: list[StatementConsultationTotal]


class StatementView(BaseModel):
    """One organisation's usage of one month, as the printable statement shows it."""

    organization: StatementOrganization
    month: str
    first_day: date
    last_day: date
    lines: list[StatementLine]
    totals: list[StatementTotal]
    untariffed_calls: int
    consultations: list[StatementConsultation]
    """The month's consultations (their segments are among the lines' calls too)."""


class StatementResponse(BaseModel):
    statement: StatementView


@api.get("/api/usage/statement", roles=FINANCE, response=StatementResponse)
async def monthly_statement(
    request: web.Request, identity: Identity, query: StatementQuery
) -> web.Response:
    """The monthly statement of one organisation: calls, minutes and amounts per language and
    tariff"""
    zone = ZoneInfo(request.app[SETTINGS].timezone)
    async with request.app[DATABASE].read() as session:
        # 403 before anything is read of an organisation the caller may not see.
        (await usage_scope(session, identity)).restrict(
            UsageFilter(organization_id=query.organization)
        )
        found = await statement(session, query.organization, query.month, zone)
    return json_response({"statement": found})


class ScopeResponse(BaseModel):
    scope: ScopeView


@api.get("/api/usage/scope", roles=FINANCE)
async def own_scope(request: web.Request, identity: Identity) -> ScopeResponse:
    """Whose usage the caller may see: every organisation, or which"""
    async with request.app[DATABASE].read() as session:
        view = await scope_view(session, await usage_scope(session, identity))
    return ScopeResponse(scope=view)


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=32)
    """A user with the finance role."""
    organization_id: str | None = Field(max_length=32)
    """The organisation whose usage they may see; null (given explicitly) for every one."""


class GrantQuery(BaseModel):
    user_id: str | None = Field(default=None, max_length=32)


class GrantResponse(BaseModel):
    grant: GrantView


class GrantList(BaseModel):
    grants: list[GrantView]


@api.get("/api/admin/finance-grants", roles=ADMIN)
async def list_finance_grants(request: web.Request, query: GrantQuery) -> GrantList:
    """Which finance users may see which further organisations' usage"""
    async with request.app[DATABASE].read() as session:
        views = await grant_views(session, await list_grants(session, query.user_id))
    return GrantList(grants=views)


@api.post("/api/admin/finance-grants", roles=ADMIN, status=201, response=GrantResponse)
async def add_finance_grant(
    request: web.Request, identity: Identity, body: GrantBody
) -> web.Response:
    """Let a finance user see another organisation's usage (or every organisation's)"""
    async with audited_change(request, identity) as change:
        found, new = await grant(
            change.session, body.user_id, body.organization_id, identity.user_id, change.now
        )
        (view,) = await grant_views(change.session, [found])
        if new:
            await change.record(
                Action.FINANCE_GRANTED,
                Target("user", found.user_id),
                grant_id=found.id,
                organization_id=found.organization_id,
                organization=view.organization or "*",
            )
    return json_response({"grant": view}, status=201 if new else 200)


@api.delete("/api/admin/finance-grants/{grant_id}", roles=ADMIN, status=204, errors=(404,))
async def remove_finance_grant(request: web.Request, identity: Identity, grant_id: str) -> None:
    """Withdraw a finance grant"""
    async with audited_change(request, identity) as change:
        gone = await revoke(change.session, grant_id)
        await change.record(
            Action.FINANCE_GRANT_REVOKED,
            Target("user", gone.user_id),
            grant_id=gone.id,
            organization_id=gone.organization_id,
        )
