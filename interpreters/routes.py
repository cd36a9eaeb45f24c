"""HTTP handlers of the roster: languages with live figures, an interpreter's own profile
and status, and the admin API (profiles, specialisations, CSV import)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, RootModel, field_validator

from accounts.access import ADMIN, actor, audited_change, own_origin
from accounts.audit import Action, Target
from accounts.models import REQUESTERS, Role
from accounts.views import Identity, PasswordLinkView
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.errors import NotFound
from infra.http import json_response
from infra.openapi import ApiRoutes
from interpreters import naming, pools, roster_import, service
from interpreters.events import change_own_status
from interpreters.keys import PRESENCE_NEWS, QUEUE_FIGURES
from interpreters.languages import pick_locale
from interpreters.live import language_availability
from interpreters.models import PoolTier, Presence, ShownAs
from interpreters.views import InterpreterDetail, InterpreterView, LanguageAvailability

api = ApiRoutes(tag="roster")


class LocaleQuery(BaseModel):
    locale: Literal["de", "en"] | None = None


class LanguageList(RootModel[list[LanguageAvailability]]):
    pass


def _locale(request: web.Request, query: LocaleQuery) -> str:
    return pick_locale(query.locale, request.headers.get("Accept-Language"))


@api.get("/api/languages", roles=(*REQUESTERS, Role.ADMIN))
async def languages(request: web.Request, query: LocaleQuery) -> LanguageList:
    """Languages of the roster with interpreters online, available, queued, and the wait"""
    app = request.app
    figures = await language_availability(
        app[DATABASE], app[QUEUE_FIGURES], app[CLOCK], _locale(request, query)
    )
    return LanguageList(figures)


class InterpreterResponse(BaseModel):
    interpreter: InterpreterView


@api.get("/api/interpreters/me", roles=(Role.INTERPRETER,), errors=(404,))
async def own_profile(
    request: web.Request, identity: Identity, query: LocaleQuery
) -> InterpreterResponse:
    """Own interpreter profile"""
    async with request.app[DATABASE].read() as session:
        view = await service.own_view(session, identity.user_id, _locale(request, query))
    return InterpreterResponse(interpreter=view)


class StatusBody(BaseModel):
    status: Literal["available", "away", "offline"]


@api.put("/api/interpreters/me/status", roles=(Role.INTERPRETER,), errors=(404, 409))
async def set_status(
    request: web.Request, identity: Identity, body: StatusBody
) -> InterpreterResponse:
    """Set own status: available, away or offline"""
    app = request.app
    view = await change_own_status(
        app[DATABASE], app[CLOCK], app[PRESENCE_NEWS], identity.user_id, Presence(body.status)
    )
    return InterpreterResponse(interpreter=view)


class ProfileBody(BaseModel):
    languages: list[str] = Field(min_length=1, max_length=30)
    gender: Literal["female", "male", "diverse"] | None = None
    specializations: list[str] = Field(default_factory=list, max_length=20)
    agency: str | None = Field(default=None, max_length=200)
    pool_id: str | None = Field(default=None, min_length=1, max_length=32)
    """The pool (`GET /api/admin/pools`); by default new interpreters join the external
    pool and colleagues of other roles the in-house pool, and a profile keeps its pool."""

    @field_validator("specializations")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]


class EditBody(ProfileBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    """Changed together with the profile, or not at all."""
    email: str | None = Field(default=None, max_length=320)


class NewInterpreterBody(ProfileBody):
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    organization_id: str | None = Field(default=None, max_length=32)
    """By default the interpreter pool (the organisation most interpreters belong to)."""


class NewInterpreterResponse(BaseModel):
    interpreter: InterpreterDetail
    password_link: PasswordLinkView
    """Shown once: hand it to the interpreter, who sets their password with it."""


class ProfileUpdate(BaseModel):
    active: bool


class DetailResponse(BaseModel):
    interpreter: InterpreterDetail


class DetailList(BaseModel):
    interpreters: list[InterpreterDetail]


class ListQuery(BaseModel):
    language: str | None = Field(default=None, max_length=35)
    status: Presence | None = None
    active: bool | None = None
    locale: Literal["de", "en"] | None = None


async def _detail(request: web.Request, user_id: str) -> InterpreterDetail:
    async with request.app[DATABASE].read() as session:
        found = await service.list_profiles(session, user_ids=[user_id])
    if not found:
        raise NotFound("No interpreter profile for this user.")
    return found[0]


@api.get("/api/admin/interpreters", roles=ADMIN)
async def list_interpreters(request: web.Request, query: ListQuery) -> DetailList:
    """List interpreters (filters: language, status, active)"""
    async with request.app[DATABASE].read() as session:
        rows = await service.list_profiles(
            session,
            language=query.language,
            status=query.status,
            active=query.active,
            locale=_locale(request, LocaleQuery(locale=query.locale)),
        )
    return DetailList(interpreters=rows)


@api.get("/api/admin/interpreters/{user_id}", roles=ADMIN, errors=(404,))
async def get_interpreter(request: web.Request, user_id: str) -> DetailResponse:
    """One interpreter's profile"""
    return DetailResponse(interpreter=await _detail(request, user_id))


@api.put("/api/admin/interpreters/{user_id}", roles=ADMIN, errors=(404, 422))
async def put_interpreter(
    request: web.Request, identity: Identity, user_id: str, body: EditBody
) -> DetailResponse:
    """Create or replace the profile of an interpreter user, or give a colleague of another
    role an in-house profile"""
    data = service.ProfileData.of(
        body.languages, body.gender, body.specializations, body.agency, body.pool_id
    )
    async with audited_change(request, identity) as change:
        # Name, e-mail and profile in one transaction: a refused part leaves all unchanged.
        await service.edit_interpreter(change.session, user_id, body.display_name, body.email)
        await service.upsert_profile(change.session, user_id, data, change.now)
        details = body.model_dump(mode="json")
        await change.record(Action.INTERPRETER_CHANGED, Target("user", user_id), **details)
    request.app[PRESENCE_NEWS].roster_changed()
    return DetailResponse(interpreter=await _detail(request, user_id))


@api.post("/api/admin/interpreters", roles=ADMIN, status=201, errors=(409,))
async def add_interpreter(
    request: web.Request, identity: Identity, body: NewInterpreterBody
) -> NewInterpreterResponse:
    """Add an interpreter: the user and the profile in one step (all or nothing), with a one-time
    "set your password" link"""
    app = request.app
    # Every field is checked before anything is written (tags here, the rest inside).
    data = service.ProfileData.of(
        body.languages, body.gender, body.specializations, body.agency, body.pool_id
    )
    new = service.NewInterpreter(
        body.username, body.display_name, body.email, body.organization_id, data
    )
    hours = app[SETTINGS].password_link_hours
    async with app[DATABASE].write() as session:
        made, link = await service.add_interpreter(
            session,
            new,
            actor(request, identity),
            identity.organization_id,
            app[CLOCK].now(),
            hours * 3600,
        )
    app[PRESENCE_NEWS].roster_changed()
    view = PasswordLinkView(url=link.url(own_origin(request)), expires_at=link.expires_at)
    detail = await _detail(request, made.user_id)
    return NewInterpreterResponse(interpreter=detail, password_link=view)


@api.patch("/api/admin/interpreters/{user_id}", roles=ADMIN, errors=(404,))
async def patch_interpreter(
    request: web.Request, identity: Identity, user_id: str, body: ProfileUpdate
) -> DetailResponse:
    """Activate or deactivate an interpreter"""
    async with audited_change(request, identity) as change:
        interpreter = await service.set_active(change.session, user_id, body.active, change.now)
        await change.record(Action.INTERPRETER_CHANGED, Target("user", user_id), active=body.active)
    await request.app[PRESENCE_NEWS].changed(user_id, interpreter.status)
    return DetailResponse(interpreter=await _detail(request, user_id))


class SpecializationBody(BaseModel):
    name: str = Field(min_length=2, max_length=50, pattern=r"^[A-Za-z0-9äöüÄÖÜß_-]+$")


class SpecializationList(BaseModel):
    specializations: list[str]


@api.get("/api/admin/specializations", roles=ADMIN)
async def list_specializations(request: web.Request) -> SpecializationList:
    """The list of specialisations"""
    async with request.app[DATABASE].read() as session:
        names = sorted(await service.known_specializations(session))
    return SpecializationList(specializations=names)


@api.post("/api/admin/specializations", roles=ADMIN, status=201)
async def add_specialization(request: web.Request, body: SpecializationBody) -> SpecializationList:
    """Add a specialisation to the list"""
    async with request.app[DATABASE].write() as session:
        await service.add_specialization(session, body.name)
        names = sorted(await service.known_specializations(session))
    return SpecializationList(specializations=names)


class ImportQuery(BaseModel):
    organization_id: str | None = Field(default=None, max_length=32)


class ImportResponse(BaseModel):
    created: int
    updated: int
    unchanged: int


@api.post("/api/admin/interpreters/import", roles=ADMIN, errors=(422,), raw_body="text/csv")
async def import_interpreters(
    request: web.Request, identity: Identity, query: ImportQuery
) -> ImportResponse:
    """Import a roster from CSV (all or nothing)"""
    text = roster_import.decode(await request.read())
    async with audited_change(request, identity) as change:
        pool = await service.pool_organization(change.session)
        organization_id = query.organization_id or pool or identity.organization_id
        result = await roster_import.import_roster(
            change.session, text, organization_id, change.now
        )
        await change.record(
            Action.INTERPRETERS_IMPORTED,
            Target("organization", organization_id),
            created=result.created,
            updated=result.updated,
            unchanged=result.unchanged,
        )
    request.app[PRESENCE_NEWS].roster_changed()
    return ImportResponse(
        created=result.created, updated=result.updated, unchanged=result.unchanged
    )


class RosterSettingsView(BaseModel):
    interpreter_shown_as: ShownAs
    """What counsellors see of the interpreter in a call: `name` or `number`."""


class RosterSettingsOut(RosterSettingsView):
    interpreter_pool: str | None = None
    """The organisation new and imported interpreters join unless told otherwise: the
    one most interpreters belong to (read only)."""


class RosterSettingsResponse(BaseModel):
    settings: RosterSettingsOut


@api.get("/api/admin/settings", roles=ADMIN)
async def get_settings(request: web.Request) -> RosterSettingsResponse:
    """The centre's settings: whether counsellors see an interpreter's name or number"""
    async with request.app[DATABASE].read() as session:
        setting = await naming.roster_setting(session)
        pool = await service.pool_organization(session)
    view = RosterSettingsOut(
        interpreter_shown_as=setting.interpreter_shown_as, interpreter_pool=pool
    )
    return RosterSettingsResponse(settings=view)


@api.put("/api/admin/settings", roles=ADMIN, response=RosterSettingsResponse)
async def put_settings(
    request: web.Request, identity: Identity, body: RosterSettingsView
) -> web.Response:
    """Change the centre's settings (calls starting or re-sent afterwards follow them)"""
    async with audited_change(request, identity) as change:
        setting = await naming.set_shown_as(change.session, body.interpreter_shown_as)
        await change.record(
            Action.SETTINGS_CHANGED,
            Target("settings", "roster"),
            interpreter_shown_as=body.interpreter_shown_as.value,
        )
    # The answer leaves out the pool, which this operation does not read.
    return json_response(
        {"settings": RosterSettingsView(interpreter_shown_as=setting.interpreter_shown_as)}
    )


class PoolBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    tier: PoolTier
    escalation_s: int = Field(default=20, ge=0, le=600)
    """Seconds a request waits for this tier before the next tier is asked too."""


class PoolChange(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    tier: PoolTier | None = None
    escalation_s: int | None = Field(default=None, ge=0, le=600)


class PoolResponse(BaseModel):
    pool: pools.PoolView


class PoolList(BaseModel):
    pools: list[pools.PoolView]


async def _pool(request: web.Request, pool_id: str) -> pools.PoolView:
    async with request.app[DATABASE].read() as session:
        found = [p for p in await pools.list_pools(session) if p.id == pool_id]
    if not found:
        raise pools.UnknownPool()
    return found[0]


@api.get("/api/admin/pools", roles=ADMIN)
async def list_pools(request: web.Request) -> PoolList:
    """Interpreter pools: tier (in-house first), escalation time, active members"""
    async with request.app[DATABASE].read() as session:
        return PoolList(pools=await pools.list_pools(session))


@api.post("/api/admin/pools", roles=ADMIN, status=201, errors=(409,))
async def add_pool(request: web.Request, identity: Identity, body: PoolBody) -> PoolResponse:
    """Add an interpreter pool"""
    name = body.name.strip()
    async with audited_change(request, identity) as change:
        pool_id = await pools.create_pool(change.session, name, body.tier, body.escalation_s)
        details = body.model_dump(mode="json")
        await change.record(Action.SETTINGS_CHANGED, Target("pool", pool_id), **details)
    return PoolResponse(pool=await _pool(request, pool_id))


@api.patch("/api/admin/pools/{pool_id}", roles=ADMIN, errors=(404, 409))
async def change_pool(
    request: web.Request, identity: Identity, pool_id: str, body: PoolChange
) -> PoolResponse:
    """Change a pool's name, tier or escalation time"""
    changes = body.model_dump(mode="json", exclude_none=True)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    async with audited_change(request, identity) as change:
        await pools.update_pool(change.session, pool_id, changes)
        await change.record(Action.SETTINGS_CHANGED, Target("pool", pool_id), **changes)
    request.app[PRESENCE_NEWS].roster_changed()
    return PoolResponse(pool=await _pool(request, pool_id))
