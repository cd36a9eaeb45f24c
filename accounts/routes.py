"""HTTP handlers of accounts: log in and out, who am I, and admin management of users,
organisations and API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import IntegrityError

from accounts import audit, service
from accounts.access import SESSION_COOKIE, actor, client_address, own_origin, require_user
from accounts.audit import Action, Actor, Target
from accounts.errors import (
    InvalidCredentials,
    NotAMachineAccount,
    OrganizationExists,
    TokenNeedsLogin,
    WeakPassword,
)
from accounts.keys import LOGIN_THROTTLE, OPERATIONS
from accounts.models import ApiToken, Organization, Role, User
from accounts.passwords import hash_password, password_problem, verify_password
from accounts.scopes import parse_scopes
from accounts.throttle import LoginThrottled
from accounts.views import Identity, OrganizationDetail, UserView, user_view
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import publish_control
from infra.errors import InvalidInput, NotFound
from infra.http import json_response
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="accounts")
ADMIN = (Role.ADMIN.value,)
MAX_TOKEN_DAYS = 366


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)


class MeResponse(BaseModel):
    user: UserView


@api.post("/api/session", summary="Log in", body=LoginBody, response=MeResponse, errors=(401, 429))
async def login(request: web.Request, body: LoginBody) -> web.Response:
    settings = request.app[SETTINGS]
    throttle = request.app[LOGIN_THROTTLE]
    username = service.normalize_username(body.username)
    address = client_address(request)
    db = request.app[DATABASE]
    try:
        attempt = await throttle.reserve(username, address)
    except LoginThrottled as exc:
        if exc.first:
            await _audit_throttled(request, username, address, exc.counter)
        raise
    try:
        async with db.read() as session:
            user = await service.find_user(session, username)
        ok = await verify_password(user.password_hash if user else None, body.password)
    except BaseException:
        await throttle.abandoned(attempt)
        raise
    now = request.app[CLOCK].now()
    if user is None or not ok or not user.active or user.machine:
        # The reservation stays: it is the failure that counts.
        async with db.write() as session:
            await audit.record(
                session,
                Actor(None, "", "", "anonymous", address),
                Action.LOGIN_FAILED,
                now,
                _user_target(user),
                reason=_failure_reason(user, ok),
            )
        raise InvalidCredentials()
    await throttle.succeeded(attempt)
    async with db.write() as session:
        # A fresh session id at every login: a planted cookie never becomes a login.
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await service.end_session(session, old)
        new = await service.start_session(session, user, now, settings.session_absolute_timeout_s)
        org = await service.get_organization(session, user.organization_id)
        await audit.record(
            session,
            Actor(user.id, user.username, user.role.value, "session", address),
            Action.LOGIN,
            now,
            _user_target(user),
        )
    response = json_response({"user": user_view(user, org)})
    secure = settings.cookie_secure
    if secure is None:
        secure = own_origin(request).startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        new.cookie_value,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
        max_age=settings.session_absolute_timeout_s,
    )
    return response


def _user_target(user: User | None) -> Target | None:
    # An unknown username is left out: people type their password into that field.
    return None if user is None else Target("user", user.id, user.username)


def _failure_reason(user: User | None, password_ok: bool) -> str:
    if user is None:
        return "unknown_user"
    if not password_ok:
        return "wrong_password"
    return "machine_account" if user.machine else "inactive"


async def _audit_throttled(request: web.Request, username: str, address: str, counter: str) -> None:
    async with request.app[DATABASE].write() as session:
        user = await service.find_user(session, username) if counter == "pair" else None
        await audit.record(
            session,
            Actor(None, "", "", "anonymous", address),
            Action.LOGIN_THROTTLED,
            request.app[CLOCK].now(),
            _user_target(user),
            counter=counter,
        )


@api.delete("/api/session", summary="Log out", status=204, roles=("any",))
async def logout(request: web.Request) -> web.Response:
    identity = await require_user(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with request.app[DATABASE].write() as session:
            await service.end_session(session, cookie)
            await audit.record(
                session,
                actor(request, identity),
                Action.LOGOUT,
                request.app[CLOCK].now(),
                Target("user", identity.user_id, identity.username),
            )
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


@api.get("/api/me", summary="Who am I", response=MeResponse, roles=("any",))
async def me(request: web.Request) -> web.Response:
    identity = await require_user(request)
    return json_response({"user": identity.view()})


class OrganizationBody(BaseModel):
    # Trimmed before anything else: the name is looked up as it is stored.
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    cost_center: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""


class OrganizationResponse(BaseModel):
    organization: OrganizationDetail


class OrganizationList(BaseModel):
    organizations: list[OrganizationDetail]


@api.post(
    "/api/admin/organizations",
    summary="Add an organisation",
    body=OrganizationBody,
    response=OrganizationResponse,
    status=201,
    roles=ADMIN,
    errors=(409,),
)
async def create_organization(request: web.Request, body: OrganizationBody) -> web.Response:
    identity = await require_user(request, Role.ADMIN)
    now = request.app[CLOCK].now()
    try:
        async with request.app[DATABASE].write() as session:
            if await service.find_organization_by_name(session, body.name) is not None:
                raise OrganizationExists(field="name")
            org = await service.create_organization(session, body.name, body.cost_center, now)
            await audit.record(
                session,
                actor(request, identity),
                Action.ORGANIZATION_CREATED,
                now,
                _org_target(org),
                cost_center=org.cost_center,
            )
    except IntegrityError:  # the same name added at the same moment by another request
        raise OrganizationExists(field="name") from None
    return json_response({"organization": _org_detail(org)}, status=201)


@api.get(
    "/api/admin/organizations", summary="List organisations", response=OrganizationList, roles=ADMIN
)
async def list_organizations(request: web.Request) -> web.Response:
    await require_user(request, Role.ADMIN)
    async with request.app[DATABASE].read() as session:
        orgs = await service.list_organizations(session)
    return json_response({"organizations": [_org_detail(o) for o in orgs]})


def _org_target(org: Organization) -> Target:
    return Target("organization", org.id, org.name)


def _org_detail(org: object) -> OrganizationDetail:
    return OrganizationDetail.model_validate(org, from_attributes=True)


class CreateUserBody(BaseModel):
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str | None = Field(default=None, min_length=1, max_length=256)
    """Required, except for machine accounts, which have none."""
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    organization_id: str = Field(min_length=1, max_length=32)
    email: str | None = Field(default=None, max_length=320)
    machine: bool = False
    """A machine account: logs in only with API tokens an admin issues for it."""


class UpdateUserBody(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=256)


class UserResponse(BaseModel):
    user: UserView


class UserList(BaseModel):
    users: list[UserView]


class UserListQuery(BaseModel):
    role: Role | None = None


def _check_password(request: web.Request, password: str, username: str) -> None:
    problem = password_problem(password, request.app[SETTINGS].password_min_length, username)
    if problem:
        raise WeakPassword(f"password {problem}", field="password")


@api.post(
    "/api/admin/users",
    summary="Add a user",
    body=CreateUserBody,
    response=UserResponse,
    status=201,
    roles=ADMIN,
    errors=(409,),
)
async def create_user(request: web.Request, body: CreateUserBody) -> web.Response:
    identity = await require_user(request, Role.ADMIN)
    if body.machine:
        if body.password is not None:
            raise WeakPassword("a machine account has no password", field="password")
        password_hash = service.NO_PASSWORD
    else:
        if body.password is None:
            raise InvalidInput(
                "password: required", fields=[{"field": "password", "problem": "required"}]
            )
        _check_password(request, body.password, body.username)
        password_hash = await hash_password(body.password)
    async with request.app[DATABASE].write() as session:
        user = await service.create_user(
            session,
            username=body.username,
            password_hash=password_hash,
            display_name=body.display_name,
            role=body.role,
            organization_id=body.organization_id,
            email=body.email,
            now=request.app[CLOCK].now(),
            machine=body.machine,
        )
        org = await service.get_organization(session, user.organization_id)
        await audit.record(
            session,
            actor(request, identity),
            Action.USER_CREATED,
            user.created_at,
            _user_target(user),
            role=user.role.value,
            organization_id=org.id,
            machine=user.machine,
        )
    return json_response({"user": user_view(user, org)}, status=201)


@api.get(
    "/api/admin/users", summary="List users", query=UserListQuery, response=UserList, roles=ADMIN
)
async def list_users(request: web.Request, query: UserListQuery) -> web.Response:
    await require_user(request, Role.ADMIN)
    async with request.app[DATABASE].read() as session:
        rows = await service.list_users(session, query.role)
    return json_response({"users": [user_view(u, o) for u, o in rows]})


@api.patch(
    "/api/admin/users/{user_id}",
    summary="Edit or deactivate a user",
    body=UpdateUserBody,
    response=UserResponse,
    roles=ADMIN,
    errors=(404,),
)
async def update_user(request: web.Request, body: UpdateUserBody) -> web.Response:
    identity = await require_user(request, Role.ADMIN)
    user_id = request.match_info["user_id"]
    password_hash = None
    async with request.app[DATABASE].read() as session:
        user = await service.get_user(session, user_id)
    if body.password is not None:
        if user.machine:
            raise WeakPassword("a machine account has no password", field="password")
        _check_password(request, body.password, user.username)
        password_hash = await hash_password(body.password)
    now = request.app[CLOCK].now()
    who = actor(request, identity)
    async with request.app[DATABASE].write() as session:
        user = await service.get_user(session, user_id)
        target = _user_target(user)
        events: list[tuple[Action, dict[str, object]]] = []
        if body.display_name is not None and body.display_name.strip() != user.display_name:
            user.display_name = body.display_name.strip()
            events.append((Action.USER_CHANGED, {"display_name": user.display_name}))
        if password_hash is not None:
            user.password_hash = password_hash
            events.append((Action.PASSWORD_CHANGED, {}))
        if body.active is not None and body.active != user.active:
            user.active = body.active
            events.append((Action.USER_REACTIVATED if body.active else Action.USER_DEACTIVATED, {}))
        session.add(user)
        ended = body.active is False or password_hash is not None
        if ended:
            revoked = await service.end_user_credentials(session, user.id, now)
            if revoked:
                events.append((Action.TOKEN_REVOKED, {"tokens": revoked, "reason": "credentials"}))
        for action, details in events:
            await audit.record(session, who, action, now, target, **details)
        org = await service.get_organization(session, user.organization_id)
    if ended:
        await publish_control(
            request.app[BUS], user.id, "close", session=None, reason="deactivated"
        )
    return json_response({"user": user_view(user, org)})


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


def _from_login(identity: Identity) -> None:
    # A leaked token must not be able to mint or revoke tokens, only a person logged in.
    if identity.token_id is not None:
        raise TokenNeedsLogin()


@api.post(
    "/api/admin/tokens",
    summary="Issue an API token for yourself or a machine account (shown once)",
    body=TokenBody,
    response=TokenResponse,
    status=201,
    roles=ADMIN,
    errors=(404,),
)
async def issue_token(request: web.Request, body: TokenBody) -> web.Response:
    identity = await require_user(request, Role.ADMIN)
    _from_login(identity)
    settings = request.app[SETTINGS]
    now = request.app[CLOCK].now()
    async with request.app[DATABASE].write() as session:
        owner = await service.get_user(session, body.user_id)
        if owner.id != identity.user_id and not owner.machine:
            raise NotAMachineAccount(field="user_id")
        if not owner.active:
            raise NotFound("No such active user.")
        scopes = request.app[OPERATIONS].check_scopes(body.scopes, owner.role)
        days = body.valid_days or settings.api_token_days
        new = await service.issue_api_token(
            session,
            owner.id,
            body.name,
            now,
            expires_at=now + timedelta(days=days),
            scopes=scopes,
            created_by=identity.user_id,
        )
        await audit.record(
            session,
            actor(request, identity),
            Action.TOKEN_ISSUED,
            now,
            Target("token", new.id, new.row.name),
            user_id=owner.id,
            username=owner.username,
            scopes=sorted(scopes),
            expires_at=new.row.expires_at.isoformat(),
        )
    return json_response(
        {
            "token": new.token,
            "id": new.id,
            "expires_at": new.row.expires_at,
            "scopes": sorted(scopes),
        },
        status=201,
    )


@api.get(
    "/api/admin/tokens",
    summary="List API tokens (never their values)",
    query=TokenListQuery,
    response=TokenList,
    roles=ADMIN,
)
async def list_tokens(request: web.Request, query: TokenListQuery) -> web.Response:
    await require_user(request, Role.ADMIN)
    now = request.app[CLOCK].now()
    async with request.app[DATABASE].read() as session:
        rows = await service.list_api_tokens(session, query.user_id, query.include_ended, now)
    return json_response({"tokens": [_token_view(t, u, now) for t, u in rows]})


@api.delete(
    "/api/admin/tokens/{token_id}",
    summary="Revoke an API token",
    status=204,
    roles=ADMIN,
    errors=(404,),
)
async def revoke_token(request: web.Request) -> web.Response:
    identity = await require_user(request, Role.ADMIN)
    _from_login(identity)
    now = request.app[CLOCK].now()
    async with request.app[DATABASE].write() as session:
        token = await service.revoke_api_token(session, request.match_info["token_id"], now)
        await audit.record(
            session,
            actor(request, identity),
            Action.TOKEN_REVOKED,
            now,
            Target("token", token.id, token.name),
            user_id=token.user_id,
        )
    return web.Response(status=204)
