"""HTTP handlers of accounts: log in and out, who am I, and admin management of users,
organisations and API tokens."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import IntegrityError

from accounts import service
from accounts.access import SESSION_COOKIE, own_origin, require_user
from accounts.errors import InvalidCredentials, OrganizationExists, WeakPassword
from accounts.keys import LOGIN_THROTTLE
from accounts.models import Role
from accounts.passwords import hash_password, password_problem, verify_password
from accounts.views import OrganizationDetail, UserView, user_view
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import publish_control
from infra.http import json_response
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="accounts")
ADMIN = (Role.ADMIN.value,)


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
    address = request.remote or "unknown"
    attempt = await throttle.reserve(username, address)
    db = request.app[DATABASE]
    try:
        async with db.read() as session:
            user = await service.find_user(session, username)
        ok = await verify_password(user.password_hash if user else None, body.password)
    except BaseException:
        await throttle.abandoned(attempt)
        raise
    if user is None or not ok or not user.active:
        # The reservation stays: it is the failure that counts.
        raise InvalidCredentials()
    await throttle.succeeded(attempt)
    now = request.app[CLOCK].now()
    async with db.write() as session:
        # A fresh session id at every login: a planted cookie never becomes a login.
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await service.end_session(session, old)
        new = await service.start_session(session, user, now, settings.session_absolute_timeout_s)
        org = await service.get_organization(session, user.organization_id)
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


@api.delete("/api/session", summary="Log out", status=204, roles=("any",))
async def logout(request: web.Request) -> web.Response:
    identity = await require_user(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with request.app[DATABASE].write() as session:
            await service.end_session(session, cookie)
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
    await require_user(request, Role.ADMIN)
    try:
        async with request.app[DATABASE].write() as session:
            if await service.find_organization_by_name(session, body.name) is not None:
                raise OrganizationExists(field="name")
            org = await service.create_organization(
                session, body.name, body.cost_center, request.app[CLOCK].now()
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


def _org_detail(org: object) -> OrganizationDetail:
    return OrganizationDetail.model_validate(org, from_attributes=True)


class CreateUserBody(BaseModel):
    username: str = Field(min_length=2, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=1, max_length=256)
    display_name: str = Field(min_length=1, max_length=200)
    role: Role
    organization_id: str = Field(min_length=1, max_length=32)
    email: str | None = Field(default=None, max_length=320)


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
    await require_user(request, Role.ADMIN)
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
        )
        org = await service.get_organization(session, user.organization_id)
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
    await require_user(request, Role.ADMIN)
    user_id = request.match_info["user_id"]
    password_hash = None
    async with request.app[DATABASE].read() as session:
        user = await service.get_user(session, user_id)
    if body.password is not None:
        _check_password(request, body.password, user.username)
        password_hash = await hash_password(body.password)
    async with request.app[DATABASE].write() as session:
        user = await service.get_user(session, user_id)
        if body.display_name is not None:
            user.display_name = body.display_name.strip()
        if password_hash is not None:
            user.password_hash = password_hash
        if body.active is not None:
            user.active = body.active
        session.add(user)
        if body.active is False or password_hash is not None:
            await service.end_user_sessions(session, user.id)
        org = await service.get_organization(session, user.organization_id)
    if body.active is False or password_hash is not None:
        await publish_control(
            request.app[BUS], user.id, "close", session=None, reason="deactivated"
        )
    return json_response({"user": user_view(user, org)})


class TokenBody(BaseModel):
    user_id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100)


class TokenResponse(BaseModel):
    token: str
    id: str


@api.post(
    "/api/admin/tokens",
    summary="Issue an API token (shown once)",
    body=TokenBody,
    response=TokenResponse,
    status=201,
    roles=ADMIN,
    errors=(404,),
)
async def issue_token(request: web.Request, body: TokenBody) -> web.Response:
    await require_user(request, Role.ADMIN)
    async with request.app[DATABASE].write() as session:
        new = await service.issue_api_token(
            session, body.user_id, body.name, request.app[CLOCK].now()
        )
    return json_response({"token": new.token, "id": new.id}, status=201)


@api.delete(
    "/api/admin/tokens/{token_id}",
    summary="Revoke an API token",
    status=204,
    roles=ADMIN,
    errors=(404,),
)
async def revoke_token(request: web.Request) -> web.Response:
    await require_user(request, Role.ADMIN)
    async with request.app[DATABASE].write() as session:
        await service.revoke_api_token(
            session, request.match_info["token_id"], request.app[CLOCK].now()
        )
    return web.Response(status=204)
