"""Access checks at the edge: who is asking (cookie or bearer token), with which role,
and whether a state-changing request came from Tolk's own origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from aiohttp import web

from accounts import audit, service
from accounts.audit import Actor, AuditedChange
from accounts.errors import BadOrigin, OutOfScope, WrongRole
from accounts.guests import GUEST_COOKIE, resolve_guest
from accounts.keys import OPERATIONS
from accounts.models import Role
from accounts.scopes import allows
from accounts.views import Identity
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from infra.db import Database
from infra.errors import NotAuthenticated
from infra.outages import Unavailable
from infra.tasks import Tasks

log = structlog.get_logger(__name__)

SESSION_COOKIE = "tolk_session"
ADMIN = (Role.ADMIN,)
"""The roles of an operation only admins may call."""


@dataclass(frozen=True, slots=True)
class _Lookup:
    identity: Identity | None


_IDENTITY = web.RequestKey("identity", _Lookup)


@dataclass(frozen=True, slots=True)
class _Entry:
    identity: Identity
    until: datetime
    epoch: int


class IdentityCache:
    """Identities resolved from tokens and cookies in the last few seconds.

    Every API call and socket starts with a lookup of its token or cookie: a read
    transaction of 2-3 ms on SQLite, most of a request's budget. An entry lives `ttl_s`
    (on the app's clock) and never beyond its session's timeouts. It is dropped at once
    when a user, organisation, session or token is changed by this process (logout,
    deactivation, revocation, renaming: `service.identity_epoch`). A change made by
    another instance reaches this one's cache within `ttl_s` at most. Unknown tokens are
    not cached. Bounded: when full, the oldest entry goes.
    """

    def __init__(self, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = timedelta(seconds=ttl_s)
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: datetime) -> Identity | None:
        """The cached identity for a key, if still good."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.until <= now or entry.epoch != service.identity_epoch():
            del self._entries[key]
            return None
        return entry.identity

    def put(self, key: str, identity: Identity, now: datetime, epoch: int, limit: datetime) -> None:
        """Remember an identity read when the epoch was `epoch`, valid until `limit` at most."""
        current = service.identity_epoch()
        if epoch != current:
            return
        entries = self._entries
        # Oldest first: drop what has gone stale, so that a burst of sockets (each with a
        # lookup of its own) does not stay in memory after its entries have expired.
        while entries:
            oldest = next(iter(entries))
            entry = entries[oldest]
            if entry.until > now and entry.epoch == current and len(entries) < self.max_entries:
                break
            del entries[oldest]
        entries[key] = _Entry(identity, min(now + self.ttl, limit), epoch)


IDENTITY_CACHE = web.AppKey("identity_cache", IdentityCache)
TOKEN_USES = web.AppKey("token_uses", Tasks)
"""The writes of tokens' last use under way: no request waits for one; the token list
and shutdown do."""
Interprets = Callable[[str], Awaitable[bool]]
"""Whether a user (by id) has an active interpreter profile: staff who interpret for
their colleagues beside their own role."""
INTERPRETS: web.AppKey[Interprets] = web.AppKey("interprets")
"""Set by the app wiring (the roster lies above)."""


async def as_interpreter(identity: Identity, interprets: Interprets | None) -> Identity | None:
    """The identity acting as an interpreter: an interpreter as is, another user with an
    interpreter profile (an in-house colleague) with the interpreter role for this request
    or socket; None for anyone else (and for everyone but interpreters without
    `interprets`). A user keeps one role; this is what they may also do."""
    if identity.role == Role.INTERPRETER:
        return identity
    # A guest or a terminal is nobody who could interpret (a terminal is a device).
    if identity.role in (Role.GUEST, Role.TERMINAL) or interprets is None:
        return None
    return replace(identity, role=Role.INTERPRETER) if await interprets(identity.user_id) else None


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


async def identify(request: web.Request, *, remember: bool = True) -> Identity | None:
    """The identity behind the request's token or cookie (cached on the request unless
    `remember` is false: a socket's upgrade asks once, and its request lives as long as
    the socket, so the answer would only take memory there)."""
    if _IDENTITY in request:
        return request[_IDENTITY].identity
    identity: Identity | None = None
    app = request.app
    db = app[DATABASE]
    cache = app.get(IDENTITY_CACHE)
    token = bearer_token(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    now = app[CLOCK].now()
    epoch = service.identity_epoch()
    if token is not None:
        key = "token:" + service.token_digest(token)
        identity = cache.get(key, now) if cache is not None else None
        if identity is None:
            held = await service.resolve_api_token(db, token, now)
            if held is not None:
                identity = held.identity
                if held.due:
                    # Cached lookups skip this too: last_used_at is precise to the minute,
                    # and only shown, so the request does not wait for it.
                    app[TOKEN_USES].spawn(_record_use(db, held.identity.token_id or "", now))
                if cache is not None:
                    cache.put(key, identity, now, epoch, held.expires_at)
    elif cookie:
        key = "cookie:" + service.token_digest(cookie)
        identity = cache.get(key, now) if cache is not None else None
        if identity is None:
            idle = app[SETTINGS].session_idle_timeout_s
            found = await service.resolve_session(db, cookie, now, idle)
            identity = found.identity
            if identity is not None and found.due:
                # Cached lookups skip this; a miss comes at least every ttl, well within
                # the minute between refreshes.
                await service.touch_session(db, cookie, now)
            if identity is not None and cache is not None and found.valid_until is not None:
                cache.put(key, identity, now, epoch, found.valid_until)
    if identity is not None and identity.scopes is not None:
        _check_scope(request, identity.scopes)
    if remember:
        request[_IDENTITY] = _Lookup(identity)
    return identity


async def _record_use(db: Database, token_id: str, now: datetime) -> None:
    try:
        await service.touch_api_token(db, token_id, now)
    except Unavailable:
        pass  # the database logged its outage; the token's next use is written
    except Exception:
        log.exception("token_use_not_recorded", token_id=token_id)


def _check_scope(request: web.Request, scopes: frozenset[str]) -> None:
    """Refuse (403) an API token whose scopes do not cover the operation asked for."""
    operations = request.app.get(OPERATIONS)
    operation = None
    if operations is not None:
        resource = request.match_info.route.resource
        path = resource.canonical if resource is not None else ""
        method = "GET" if request.method == "HEAD" else request.method
        operation = operations.by_route.get((method, path))
    if not allows(scopes, operation, request.method):
        raise OutOfScope()


async def authorize(request: web.Request, roles: tuple[str, ...]) -> Identity | None:
    """Who asks, admitted by a route's declared roles before its input is read: logged in
    (401) with one of `roles` (403; "any" is every logged-in user). No roles is a public
    route (no identity), which a page of another origin may still not call.

    Cookie-authenticated requests that change state must come from our own origin (403
    `bad_origin`): SameSite cookies alone do not cover older browsers or same-site hosts.
    A guest's cookie counts only where "guest" is declared; "any" never admits a guest.
    Where interpreters are admitted, so is a colleague with an interpreter profile, acting
    as an interpreter (`as_interpreter`).
    """
    if not roles:
        if request.method not in _SAFE_METHODS and not _origin_absent_or_allowed(request):
            raise BadOrigin()
        return None
    identity = await identify(request)
    if identity is None and Role.GUEST.value in roles:
        identity = await identify_guest(request)
    if identity is None:
        raise NotAuthenticated()
    if (
        request.method not in _SAFE_METHODS
        and bearer_token(request) is None
        and not origin_allowed(request)
    ):
        raise BadOrigin()
    if "any" not in roles and identity.role not in roles:
        acting = None
        if Role.INTERPRETER in roles:
            acting = await as_interpreter(identity, request.app.get(INTERPRETS))
        if acting is None:
            raise WrongRole()
        return acting
    return identity


async def identify_guest(request: web.Request) -> Identity | None:
    """The guest behind the request's guest cookie, if any: it counts only where a guest is
    admitted (the socket, the guest's own routes), never as a logged-in user."""
    cookie = request.cookies.get(GUEST_COOKIE)
    if not cookie:
        return None
    async with request.app[DATABASE].read() as session:
        return await resolve_guest(session, cookie, request.app[CLOCK].now())


def _origin_absent_or_allowed(request: web.Request) -> bool:
    # Browsers send Origin on every POST; a client without one is no page of another site
    # (curl, the simulated interpreter), so only a foreign origin is refused.
    if "Origin" not in request.headers and "Referer" not in request.headers:
        return True
    return origin_allowed(request)


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, value: str, max_age_s: int
) -> None:
    """Hand the browser its login session's cookie: script cannot read it, no other site
    sends it, and over https it travels only over https."""
    secure = request.app[SETTINGS].cookie_secure
    if secure is None:
        secure = own_origin(request).startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="Strict",
        secure=secure,
        path="/",
        max_age=max_age_s,
    )


def client_address(request: web.Request) -> str:
    """The client's address as the server sees it (behind a trusted proxy: the real one)."""
    return request.remote or "unknown"


def actor(request: web.Request, identity: Identity | None) -> Actor:
    """Who is asking, for the security event log."""
    return Actor.of(identity, client_address(request))


def audited_change(
    request: web.Request, identity: Identity | None
) -> AbstractAsyncContextManager[AuditedChange]:
    """A write transaction for the caller's change, with its security events."""
    return audit.audited(request.app[DATABASE], request.app[CLOCK], actor(request, identity))
