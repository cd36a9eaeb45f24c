"""HTTP handlers of accounts: log in and out, who am I, and admin management of users,
organisations and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints, field_validator

from accounts import password_links, service, tokens
from accounts.access import (
    ADMIN,
    INTERPRETS,
    SESSION_COOKIE,
    TOKEN_USES,
    actor,
    as_interpreter,
    audited_change,
    client_address,
    own_origin,
    set_session_cookie,
)
from accounts.audit import Action, Target
from accounts.hooks import user_deactivated
from accounts.keys import LOGIN_THROTTLE, OPERATIONS
from accounts.login import log_in
from accounts.models import ApiToken, Role, User
from accounts.organizations import add_organization
from accounts.scopes import parse_scopes
from accounts.users import NewUser, UserChanges, add_user, change_user
from accounts.views import Identity, OrganizationDetail, PasswordLinkView, UserView, user_view
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import publish_control
from infra.http import json_response
from infra.openapi import ANYONE, PUBLIC, ApiRoutes

api = ApiRoutes(tag="accounts")
MAX_TOKEN_DAYS = 366


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


class MeResponse(BaseModel):
    user: UserView
    interprets: bool = False
    """The user also interprets (an interpreter, or a colleague with an in-house profile):
    their page links to the interpreter's page."""


@api.post("/api/session", roles=PUBLIC, errors=(401, 429), response=MeResponse)
async def login(request: web.Request, body: LoginBody) -> web.Response:
    """Log in"""
    app = request.app
    settings = app[SETTINGS]
    done = await log_in(
        app[DATABASE],
        app[LOGIN_THROTTLE],
        app[CLOCK],
        body.username,
        body.password,
        address=client_address(request),
        replaces=request.cookies.get(SESSION_COOKIE),
        session_s=settings.session_absolute_timeout_s,
    )
    response = json_response({"user": user_view(done.user, done.organization)})
    set_session_cookie(request, response, done.cookie_value, settings.session_absolute_timeout_s)
    return response


@api.delete("/api/session", roles=ANYONE, status=204)
async def logout(request: web.Request, identity: Identity) -> web.Response:
    """Log out"""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with audited_change(request, identity) as change:
            await service.end_session(change.session, cookie)
            await change.record(Action.LOGOUT, Target("user", identity.user_id, identity.username))
        await publish_control(
            request.app[BUS],
            identity.user_id,
            "close",
            session=identity.session_key,
            reason="logged_out",
        )
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@api.get("/api/me", roles=ANYONE)
async def me(request: web.Request, identity: Identity) -> MeResponse:
    """Who am I"""
    interprets = await as_interpreter(identity, request.app.get(INTERPRETS)) is not None
    return MeResponse(user=identity.view(), interprets=interprets)


class OrganizationBody(BaseModel):
    # Trimmed before anything else: the name is looked up as it is stored.
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    cost_center: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""


class OrganizationResponse(BaseModel):
    organization: OrganizationDetail


class OrganizationList(BaseModel):
    organizations: list[OrganizationDetail]


@api.post("/api/admin/organizations", roles=ADMIN, status=201, errors=(409,))
async def create_organization(
    request: web.Request, identity: Identity, body: OrganizationBody
) -> OrganizationResponse:
    """Add an organisation"""
    async with audited_change(request, identity) as change:
        org = await add_organization(change, body.name, body.cost_center)
    return OrganizationResponse(organization=_org_detail(org))


@api.get("/api/admin/organizations", roles=ADMIN)
async def list_organizations(request: web.Request) -> OrganizationList:
    """List organisations"""
    async with request.app[DATABASE].read() as session:
        orgs = await service.list_organizations(session)
    return OrganizationList(organizations=[_org_detail(o) for o in orgs])


def _org_detail(org: object) -> OrganizationDetail:
    return OrganizationDetail.model_validate(org, from_attributes=True)


class CreateUserBody(BaseModel):
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str | None = Field(default=None, min_length=1, max_length=256)
    """Required, except for machine accounts, which have none."""
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    organization_id: str = Field(min_length=1, max_length=32)

    @field_validator("role")
    @classmethod
    def _a_user_role(cls, role: Role) -> Role:
        # A guest is a client invited by link into one room, never a user with an account.
        if role == Role.GUEST:
            raise ValueError("guest is no role of a user")
        # A terminal comes with its device link and site: POST /api/admin/terminals.
        if role == Role.TERMINAL:
            raise ValueError("a terminal is added as a terminal (POST /api/admin/terminals)")
        return role

    email: str | None = Field(default=None, max_length=320)
    machine: bool = False
    """A machine account: logs in only with API tokens an admin issues for it."""
    site_id: str | None = Field(default=None, min_length=1, max_length=32)
    """An active site of the user's organisation (422 `unknown_site` otherwise)."""


class UpdateUserBody(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)
    site_id: str | None = Field(default=None, min_length=1, max_length=32)
    """An active site of the user's organisation; `null` takes the user off their site."""


class UserResponse(BaseModel):
    user: UserView


class UserList(BaseModel):
    users: list[UserView]


class UserListQuery(BaseModel):
    role: Role | None = None


@api.post("/api/admin/users", roles=ADMIN, status=201, errors=(409,))
async def create_user(
    request: web.Request, identity: Identity, body: CreateUserBody
) -> UserResponse:
    """Add a user"""
    app = request.app
    user, org = await add_user(
        app[DATABASE],
        app[CLOCK],
        NewUser(**body.model_dump()),
        actor(request, identity),
        app[SETTINGS].password_min_length,
    )
    return UserResponse(user=user_view(user, org))


@api.get("/api/admin/users", roles=ADMIN)
async def list_users(request: web.Request, query: UserListQuery) -> UserList:
    """List users"""
    async with request.app[DATABASE].read() as session:
        rows = await service.list_users(session, query.role)
    return UserList(users=[user_view(u, o) for u, o in rows])


@api.patch("/api/admin/users/{user_id}", roles=ADMIN, errors=(404,))
async def update_user(
    request: web.Request, identity: Identity, user_id: str, body: UpdateUserBody
) -> UserResponse:
    """Edit or deactivate a user"""
    app = request.app
    changed = await change_user(
        app[DATABASE],
        app[CLOCK],
        user_id,
        UserChanges(**body.model_dump(), set_site="site_id" in body.model_fields_set),
        actor(request, identity),
        app[SETTINGS].password_min_length,
    )
    if changed.credentials_ended:
        await publish_control(
            app[BUS], changed.user.id, "close", session=None, reason="deactivated"
        )
    if changed.deactivated:
        await user_deactivated(app, changed.user.id)
    return UserResponse(user=user_view(changed.user, changed.organization))


class TokenBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=32)
    """Yourself, or a machine account."""
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=30)
    """`*` (the user's whole role), `socket`, an API area (an OpenAPI tag) or `AREA:read`."""
    valid_days: int | None = Field(default=None, ge=1, le=MAX_TOKEN_DAYS)
    """How long the token works; by default TOLK_API_TOKEN_DAYS."""


class TokenResponse(BaseModel):
    token: str
    id: str
    expires_at: datetime
    scopes: list[str]


class TokenOwner(BaseModel):
    id: str
    username: str
    display_name: str
    machine: bool


class TokenView(BaseModel):
    id: str
    name: str
    user: TokenOwner
    scopes: list[str]
    created_at: datetime
    created_by: str | None
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool


class TokenList(BaseModel):
    tokens: list[TokenView]


class TokenListQuery(BaseModel):
    user_id: str | None = Field(default=None, max_length=32)
    include_ended: bool = False
    """Also list revoked and expired tokens."""


def _token_view(token: ApiToken, user: User, now: datetime) -> TokenView:
    return TokenView(
        id=token.id,
        name=token.name,
        user=TokenOwner(
            id=user.id, username=user.username, display_name=user.display_name, machine=user.machine
        ),
        scopes=sorted(parse_scopes(token.scopes)),
        created_at=token.created_at,
        created_by=token.created_by,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        active=token.revoked_at is None and token.expires_at > now,
    )


@api.post("/api/admin/tokens", roles=ADMIN, status=201, errors=(404,))
async def issue_token(request: web.Request, identity: Identity, body: TokenBody) -> TokenResponse:
    """Issue an API token for yourself or a machine account (shown once)"""
    app = request.app
    async with audited_change(request, identity) as change:
        new = await tokens.issue_token(
            change,
            app[OPERATIONS],
            owner_id=body.user_id,
            name=body.name,
            scopes=body.scopes,
            days=body.valid_days or app[SETTINGS].api_token_days,
            issued_by=identity,
        )
    return TokenResponse(
        token=new.token, id=new.id, expires_at=new.row.expires_at, scopes=new.row.scopes.split()
    )


@api.get("/api/admin/tokens", roles=ADMIN)
async def list_tokens(request: web.Request, query: TokenListQuery) -> TokenList:
    """List API tokens (never their values)"""
    await request.app[TOKEN_USES].settled()  # the uses this instance has heard of
    now = request.app[CLOCK].now()
    async with request.app[DATABASE].read() as session:
        rows = await service.list_api_tokens(session, query.user_id, query.include_ended, now)
    return TokenList(tokens=[_token_view(t, u, now) for t, u in rows])


@api.delete("/api/admin/tokens/{token_id}", roles=ADMIN, status=204, errors=(404,))
async def revoke_token(request: web.Request, identity: Identity, token_id: str) -> None:
    """Revoke an API token"""
    async with audited_change(request, identity) as change:
        await tokens.revoke_token(change, token_id, identity)


class PasswordLinkResponse(BaseModel):
    link: PasswordLinkView


@api.post("/api/admin/users/{user_id}/password-link", roles=ADMIN, status=201, errors=(404,))
async def create_password_link(
    request: web.Request, identity: Identity, user_id: str
) -> PasswordLinkResponse:
    """Make a one-time "set your password" link for a user (shown once)"""
    valid_s = request.app[SETTINGS].password_link_hours * 3600
    async with audited_change(request, identity) as change:
        link = await password_links.create_link(
            change.session, user_id, change.who, change.now, valid_s
        )
    view = PasswordLinkView(url=link.url(own_origin(request)), expires_at=link.expires_at)
    return PasswordLinkResponse(link=view)


class LinkQuery(BaseModel):
    token: str = Field(min_length=1, max_length=100)


class LinkOwner(BaseModel):
    username: str
    display_name: str


class LinkOwnerResponse(BaseModel):
    user: LinkOwner


class SetPasswordBody(BaseModel):
    token: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


@api.post("/api/password-link/user", roles=PUBLIC)
async def password_link_user(request: web.Request, body: LinkQuery) -> LinkOwnerResponse:
    """Whose password a one-time link sets (422 link_not_valid once it is spent)"""
    user = await password_links.link_user(
        request.app[DATABASE], body.token, request.app[CLOCK].now()
    )
    return LinkOwnerResponse(user=LinkOwner(username=user.username, display_name=user.display_name))


@api.post("/api/password-link", roles=PUBLIC, status=204)
async def set_password_by_link(request: web.Request, body: SetPasswordBody) -> None:
    """Set one's password with a one-time link (then log in as usual)"""
    app = request.app
    user = await password_links.set_password_by_link(
        app[DATABASE],
        app[CLOCK],
        body.token,
        body.password,
        actor(request, None),
        app[SETTINGS].password_min_length,
    )
    await publish_control(app[BUS], user.id, "close", session=None, reason="password_changed")
