"""Access checks at the edge: who is asking (cookie or bearer token), with which role,
and whether a state-changing request came from Tolk's own origin."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from accounts import service
from accounts.errors import BadOrigin, WrongRole
from accounts.models import Role
from accounts.views import Identity
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.errors import NotAuthenticated

SESSION_COOKIE = "tolk_session"


@dataclass(frozen=True, slots=True)
class _Lookup:
    identity: Identity | None


_IDENTITY = web.RequestKey("identity", _Lookup)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def own_origin(request: web.Request) -> str:
    """The origin browsers use to reach this server."""
    configured = request.app[SETTINGS].public_origin
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def allowed_origins(request: web.Request) -> set[str]:
    """Origins whose pages may change state and open sockets with a user's cookie."""
    extra = {o.rstrip("/") for o in request.app[SETTINGS].allowed_origins}
    return {own_origin(request), *extra}


def origin_allowed(request: web.Request) -> bool:
    """Whether the request's Origin (or, lacking it, Referer) is one of ours."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return False
        origin = "/".join(referer.split("/", 3)[:3])
    return origin.rstrip("/") in allowed_origins(request)


def bearer_token(request: web.Request) -> str | None:
    """The API token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def identify(request: web.Request) -> Identity | None:
    """The identity behind the request's token or cookie (cached on the request)."""
    if _IDENTITY in request:
        return request[_IDENTITY].identity
    identity: Identity | None = None
    db = request.app[DATABASE]
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        async with db.read() as session:
            identity = await service.resolve_api_token(session, token)
    elif cookie:
        now = request.app[CLOCK].now()
        idle = request.app[SETTINGS].session_idle_timeout_s
        async with db.read() as session:
            identity, due = await service.resolve_session(session, cookie, now, idle)
        if identity is not None and due:
            async with db.write() as session:
                await service.touch_session(session, cookie, now)
    request[_IDENTITY] = _Lookup(identity)
    return identity


async def require_user(request: web.Request, *roles: Role) -> Identity:
    """The caller, who must be logged in (401) and hold one of `roles` if given (403).

    Cookie-authenticated requests that change state must come from our own origin (403
    `bad_origin`): SameSite cookies alone do not cover older browsers or same-site hosts.
    """
    identity = await identify(request)
    if identity is None:
        raise NotAuthenticated()
    if (
        request.method not in _SAFE_METHODS
        and bearer_token(request) is None
        and not origin_allowed(request)
    ):
        raise BadOrigin()
    if roles and identity.role not in roles:
        raise WrongRole()
    return identity
