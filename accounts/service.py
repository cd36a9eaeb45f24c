"""Account services: organisations, users, login sessions and API tokens.

Services take the session and the time as arguments and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, false, func, or_, true, update
from sqlalchemy import select as select_columns
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.errors import UnknownOrganization, UsernameTaken
from accounts.models import ApiToken, LoginSession, Organization, Role, User
from accounts.views import Identity
from infra.db import Database, UTCDateTime
from infra.epochs import Epoch
from infra.errors import NotFound

# Writing last_seen_at on every request would make every read a write; a minute is
# precise enough for an idle timeout measured in hours.
_TOUCH_EVERY = timedelta(seconds=60)
NO_PASSWORD = "!"  # noqa: S105 - not a password: a hash nothing verifies against
"""The password hash of a machine account: no password verifies against it."""


# -- identity changes, for caches of resolved identities (accounts.access) ---------------------

_IDENTITY_ROWS = (User, Organization, LoginSession, ApiToken)


def _identities_touched(session: Session) -> bool:
    # Edits of users, organisations, sessions and tokens through the ORM (deactivation,
    # renaming, logout, revocation); new rows are nobody's identity yet.
    return any(isinstance(o, _IDENTITY_ROWS) for o in (*session.dirty, *session.deleted))


_IDENTITIES = Epoch("identities", _identities_touched)


def identity_epoch() -> int:
    """A number that grows whenever a user, session or token of this process may change."""
    return _IDENTITIES.value


def token_digest(token: str) -> str:
    """The SHA-256 under which a secret token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(token_hash: str) -> str:
    """A short non-secret name of a login session, safe for the bus and logs."""
    return token_hash[:16]


def normalize_username(username: str) -> str:
    """Usernames compare without case and surrounding space."""
    return username.strip().lower()


async def find_organization_by_name(session: AsyncSession, name: str) -> Organization | None:
    """The organisation of that name, if any."""
    result = await session.exec(select(Organization).where(Organization.name == name))
    return result.first()


async def create_organization(
    session: AsyncSession, name: str, cost_center: str, now: datetime
) -> Organization:
    """Add an organisation."""
    org = Organization(name=name.strip(), cost_center=cost_center.strip(), created_at=now)
    session.add(org)
    await session.flush()
    return org


async def get_or_create_organization(
    session: AsyncSession, name: str, cost_center: str, now: datetime
) -> Organization:
    """The organisation of that name, created when missing."""
    return await find_organization_by_name(session, name) or await create_organization(
        session, name, cost_center, now
    )


async def get_organization(session: AsyncSession, organization_id: str) -> Organization:
    """The organisation with that id, or UnknownOrganization."""
    org = await session.get(Organization, organization_id)
    if org is None:
        raise UnknownOrganization(field="organization_id")
    return org


async def find_user(session: AsyncSession, username: str) -> User | None:
    """The user with that username (any case), if any."""
    result = await session.exec(select(User).where(User.username == normalize_username(username)))
    return result.first()


async def get_user(session: AsyncSession, user_id: str) -> User:
    """The user with that id, or NotFound."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password_hash: str,
    display_name: str,
    role: Role,
    organization_id: str,
    now: datetime,
    email: str | None = None,
    machine: bool = False,
    site_id: str | None = None,
) -> User:
    """Add a user; UsernameTaken when the name is in use. The caller checks the site."""
    if await find_user(session, username) is not None:
        raise UsernameTaken(field="username")
    await get_organization(session, organization_id)
    user = User(
        username=normalize_username(username),
        password_hash=password_hash,
        display_name=display_name.strip(),
        role=role,
        organization_id=organization_id,
        email=email,
        machine=machine,
        site_id=site_id,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


@dataclass(frozen=True, slots=True)
class NewSession:
    """A login session just started: the cookie value goes to the browser, once."""

    cookie_value: str
    key: str
    expires_at: datetime


async def start_session(
    session: AsyncSession,
    user: User,
    now: datetime,
    absolute_timeout_s: int,
    *,
    device: bool = False,
) -> NewSession:
    """Start a login session with a fresh 256-bit id (`device`: a terminal's, which has no
    idle timeout)."""
    token = secrets.token_urlsafe(32)
    digest = token_digest(token)
    expires = now + timedelta(seconds=absolute_timeout_s)
    session.add(
        LoginSession(
            token_hash=digest,
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
            device=device,
        )
    )
    await session.flush()
    return NewSession(cookie_value=token, key=session_key(digest), expires_at=expires)


# Who holds a token or a session: one statement each, built once with bound values, since
# every API call and socket that misses the identity cache runs one of them.
_IDENTITY_COLUMNS = (
    col(User.id),
    col(User.username),
    col(User.display_name),
    col(User.role),
    col(Organization.id),
    col(Organization.name),
    col(User.site_id),
)


def _holder(credential: type[ApiToken | LoginSession], *columns: Any) -> Select[Any]:
    """Who holds a token or session of `credential`'s table by its digest: `columns` of
    the credential, then the identity's."""
    return (
        select_columns(*columns, *_IDENTITY_COLUMNS)
        .join(Organization, col(Organization.id) == col(User.organization_id))
        .join(credential, col(credential.user_id) == col(User.id))
        .where(col(credential.token_hash) == bindparam("digest"))
        .where(col(User.active) == true())
    )


_TOKEN_HOLDER = _holder(
    ApiToken,
    col(ApiToken.id),
    col(ApiToken.scopes),
    col(ApiToken.expires_at),
    col(ApiToken.last_used_at),
).where(col(ApiToken.revoked_at).is_(None))
_SESSION_HOLDER = _holder(
    LoginSession,
    col(LoginSession.expires_at),
    col(LoginSession.last_seen_at),
    col(LoginSession.device),
)


def _identity(
    row: Sequence[Any],
    key: str | None,
    token_id: str | None = None,
    scopes: frozenset[str] | None = None,
) -> Identity:
    user_id, username, display_name, role, organization_id, organization_name, site_id = row
    return Identity(
        user_id=user_id,
        username=username,
        display_name=display_name,
        role=role,
        organization_id=organization_id,
        organization_name=organization_name,
        session_key=key,
        token_id=token_id,
        scopes=scopes,
        site_id=site_id,
    )


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    """Who holds a cookie, whether its last-seen time is due for a refresh, and until when
    it stays valid if unused (the earlier of its absolute and idle timeouts)."""

    identity: Identity | None
    due: bool
    valid_until: datetime | None


async def resolve_session(
    db: Database, cookie_value: str, now: datetime, idle_timeout_s: int
) -> ResolvedSession:
    """Who holds this cookie, and whether its last-seen time is due for a refresh."""
    digest = token_digest(cookie_value)
    rows = await db.statement(_SESSION_HOLDER, {"digest": digest})
    row = rows[0] if rows else None
    if row is None or row[0] <= now:
        return ResolvedSession(None, False, None)
    expires_at, last_seen_at, device = row[0], row[1], row[2]
    # A terminal may stand switched off over a weekend: its session ends only at expires_at.
    idle_until = expires_at if device else last_seen_at + timedelta(seconds=idle_timeout_s)
    if idle_until <= now:
        return ResolvedSession(None, False, None)
    return ResolvedSession(
        _identity(row[3:], session_key(digest)),
        now - last_seen_at >= _TOUCH_EVERY,
        min(expires_at, idle_until),
    )


_TOUCH_SESSION = (
    update(LoginSession)
    .where(col(LoginSession.token_hash) == bindparam("digest"))
    .values(last_seen_at=bindparam("now", type_=UTCDateTime()))
)


async def touch_session(db: Database, cookie_value: str, now: datetime) -> None:
    """Record that a session was used now (for the idle timeout): one statement of its own."""
    await db.statement(_TOUCH_SESSION, {"digest": token_digest(cookie_value), "now": now})


async def end_session(session: AsyncSession, cookie_value: str) -> str | None:
    """Invalidate a login session; returns the user id it belonged to."""
    row = await session.get(LoginSession, token_digest(cookie_value))
    if row is None:
        return None
    await session.delete(row)
    return row.user_id


async def end_user_credentials(session: AsyncSession, user_id: str, now: datetime) -> int:
    """End every login session and revoke every API token of a user (password changed,
    deactivated); returns how many tokens were revoked."""
    await end_user_sessions(session, user_id)
    result = await session.exec(
        update(ApiToken)
        .where(col(ApiToken.user_id) == user_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)


async def end_user_sessions(session: AsyncSession, user_id: str) -> None:
    """Invalidate every login session of a user."""
    _IDENTITIES.changed(session.sync_session)
    await session.exec(
        delete(LoginSession).where(LoginSession.user_id == user_id)  # type: ignore[arg-type]
    )


async def purge_expired_sessions(session: AsyncSession, now: datetime, idle_timeout_s: int) -> int:
    """Delete sessions past either timeout (a device session has only the absolute one);
    returns how many."""
    idle_cutoff = now - timedelta(seconds=idle_timeout_s)
    idle = and_(col(LoginSession.last_seen_at) <= idle_cutoff, col(LoginSession.device) == false())
    result = await session.exec(
        delete(LoginSession).where(or_(col(LoginSession.expires_at) <= now, idle))
    )
    return int(result.rowcount or 0)


@dataclass(frozen=True, slots=True)
class NewToken:
    """An API token just issued: its secret value is shown this once."""

    token: str
    id: str
    row: ApiToken


async def issue_api_token(
    session: AsyncSession,
    user_id: str,
    name: str,
    now: datetime,
    *,
    expires_at: datetime | None = None,
    scopes: Iterable[str] = ("*",),
    created_by: str | None = None,
) -> NewToken:
    """Issue a bearer token for a user (by default for 90 days, with the user's full role)."""
    await get_user(session, user_id)
    secret = "tolk_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        name=name.strip(),
        token_hash=token_digest(secret),
        created_at=now,
        created_by=created_by,
        expires_at=expires_at or now + timedelta(days=90),
        scopes=" ".join(sorted(set(scopes))),
    )
    session.add(row)
    await session.flush()
    return NewToken(token=secret, id=row.id, row=row)


@dataclass(frozen=True, slots=True)
class ResolvedToken:
    """Who holds a bearer token, until when it is good, and whether its last use is due
    to be written."""

    identity: Identity
    expires_at: datetime
    due: bool


async def resolve_api_token(db: Database, token: str, now: datetime) -> ResolvedToken | None:
    """Who holds this bearer token (None when unknown, expired, revoked or the user is
    inactive)."""
    rows = await db.statement(_TOKEN_HOLDER, {"digest": token_digest(token)})
    row = rows[0] if rows else None
    if row is None or row[2] <= now:
        return None
    token_id, scopes, expires_at, last_used_at = row[0], row[1], row[2], row[3]
    identity = _identity(row[4:], None, token_id, frozenset(scopes.split()))
    due = last_used_at is None or now - last_used_at >= _TOUCH_EVERY
    return ResolvedToken(identity, expires_at, due)


_TOUCH_TOKEN = (
    update(ApiToken)
    .where(col(ApiToken.id) == bindparam("token_id"))
    .values(last_used_at=bindparam("now", type_=UTCDateTime()))
)


async def touch_api_token(db: Database, token_id: str, now: datetime) -> None:
    """Record that a token was used now: one statement of its own."""
    await db.statement(_TOUCH_TOKEN, {"token_id": token_id, "now": now})


async def get_api_token(session: AsyncSession, token_id: str) -> ApiToken:
    """The token with that id, or NotFound."""
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound("No such token.")
    return row


async def revoke_api_token(session: AsyncSession, token_id: str, now: datetime) -> ApiToken:
    """Revoke a token by id (a revoked one stays as it was)."""
    row = await get_api_token(session, token_id)
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
    return row


async def list_api_tokens(
    session: AsyncSession, user_id: str | None, include_ended: bool, now: datetime
) -> list[tuple[ApiToken, User]]:
    """Tokens with their users, newest first; only working ones unless `include_ended`."""
    query = select(ApiToken, User).join(User, col(User.id) == col(ApiToken.user_id))
    if user_id is not None:
        query = query.where(col(ApiToken.user_id) == user_id)
    if not include_ended:
        query = query.where(col(ApiToken.revoked_at).is_(None), col(ApiToken.expires_at) > now)
    result = await session.exec(query.order_by(col(ApiToken.created_at).desc()))
    return [(t, u) for t, u in result.all()]


async def list_users(
    session: AsyncSession, role: Role | None = None
) -> list[tuple[User, Organization]]:
    """Users with their organisations, by username."""
    query = select(User, Organization).join(
        Organization,
        Organization.id == User.organization_id,  # type: ignore[arg-type]
    )
    if role is not None:
        query = query.where(User.role == role)
    result = await session.exec(query.order_by(User.username))
    return [(u, o) for u, o in result.all()]


async def list_organizations(session: AsyncSession) -> list[Organization]:
    """Every organisation, by name."""
    result = await session.exec(select(Organization).order_by(Organization.name))
    return list(result.all())


async def count_users(session: AsyncSession) -> int:
    """How many users exist."""
    result = await session.exec(select(func.count()).select_from(User))
    return int(result.one())
