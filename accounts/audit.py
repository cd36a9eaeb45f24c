"""The security event log: each event is a structured log line and a row of `audit_event`
that admins read through `GET /api/admin/audit`. Events name who (and how: session, token,
command line), what, when, from which address and the target; never a secret."""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import and_, delete, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import AuditEvent, User
from accounts.views import Identity
from infra.clock import Clock
from infra.db import Database

# Keys that must never reach the log or the table, whatever a caller passes.
_SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "cookie", "secret"})


class Action(StrEnum):
    """What happened."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name, not a secret
    PASSWORD_LINK_CREATED = "password_link_created"  # noqa: S105 - an event name
    USER_CREATED = "user_created"
    USER_CHANGED = "user_changed"
    USER_DEACTIVATED = "user_deactivated"
    USER_REACTIVATED = "user_reactivated"
    ORGANIZATION_CREATED = "organization_created"
    SITE_CREATED = "site_created"
    SITE_CHANGED = "site_changed"
    INTERPRETER_CHANGED = "interpreter_changed"
    INTERPRETERS_IMPORTED = "interpreters_imported"
    TARIFF_CREATED = "tariff_created"
    TARIFF_CHANGED = "tariff_changed"
    TOKEN_ISSUED = "token_issued"  # noqa: S105 - an event name
    TOKEN_REVOKED = "token_revoked"  # noqa: S105 - an event name
    USAGE_EXPORTED = "usage_exported"
    FINANCE_GRANTED = "finance_granted"
    FINANCE_GRANT_REVOKED = "finance_grant_revoked"
    TERMINAL_CREATED = "terminal_created"
    TERMINAL_LINK_CREATED = "terminal_link_created"
    TERMINAL_REVOKED = "terminal_revoked"
    SETTINGS_CHANGED = "settings_changed"
    DATA_PURGED = "data_purged"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, and from where."""

    user_id: str | None
    name: str
    role: str
    via: str
    """`session`, `token`, `cli`, `system`, or `anonymous`."""
    address: str

    @classmethod
    def of(cls, identity: Identity | None, address: str) -> Actor:
        """The actor behind an identity (None: someone not logged in)."""
        if identity is None:
            return cls(None, "", "", "anonymous", address)
        via = "token" if identity.token_id is not None else "session"
        return cls(identity.user_id, identity.username, identity.role.value, via, address)


SYSTEM = Actor(None, "tolk", "", "system", "")


def command_line() -> Actor:
    """Someone at the server's command line, named by their system account."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        name = ""
    return Actor(None, name, "", "cli", "local")


@dataclass(frozen=True, slots=True)
class Target:
    """What an event is about."""

    type: str
    id: str
    name: str = ""


def user_target(user: User | None) -> Target | None:
    """A user as events name them; an unknown username is left out, because people type
    their password into that field."""
    return None if user is None else Target("user", user.id, user.username)


async def record(
    session: AsyncSession,
    actor: Actor,
    action: Action,
    now: datetime,
    target: Target | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an event to the session's transaction and write it to the log."""
    leaked = _SECRET_KEYS.intersection(details)
    if leaked:
        raise ValueError(f"audit details may not hold {sorted(leaked)}")
    target = target or Target("", "")
    row = AuditEvent(
        at=now,
        action=action.value,
        actor_id=actor.user_id,
        actor_name=actor.name[:100],
        actor_role=actor.role,
        via=actor.via,
        address=actor.address[:64],
        target_type=target.type,
        target_id=target.id[:64],
        target_name=target.name[:200],
        details=json.dumps(details, default=str, ensure_ascii=False)[:4000],
    )
    session.add(row)
    # A logger per event (they are rare): it follows the logging configuration of the
    # moment, which a cached module-level logger would not.
    structlog.get_logger("tolk.audit").info(
        action.value,
        audit=True,
        actor_id=actor.user_id,
        actor=actor.name,
        via=actor.via,
        address=actor.address,
        target_type=target.type or None,
        target_id=target.id or None,
        **details,
    )
    return row


@dataclass(frozen=True, slots=True)
class AuditedChange:
    """A write transaction and the security events it records: all at one moment, by one
    actor, committed together."""

    session: AsyncSession
    now: datetime
    who: Actor

    async def record(self, action: Action, target: Target | None = None, **details: Any) -> None:
        """Add a security event to the transaction."""
        await record(self.session, self.who, action, self.now, target, **details)


@asynccontextmanager
async def audited(db: Database, clock: Clock, who: Actor) -> AsyncIterator[AuditedChange]:
    """A write transaction for a change by `who`, with its security events."""
    now = clock.now()
    async with db.write() as session:
        yield AuditedChange(session, now, who)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to read, newest first."""

    action: Action | None = None
    actor: str | None = None
    """A user id or a username."""
    target: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    before: str | None = None
    """The id of the last event of the previous page."""
    limit: int = 100


async def list_events(session: AsyncSession, query: AuditFilter) -> tuple[list[AuditEvent], bool]:
    """Events matching the filter, newest first, and whether more follow."""
    stmt = select(AuditEvent)
    if query.action:
        stmt = stmt.where(col(AuditEvent.action) == query.action)
    if query.actor:
        stmt = stmt.where(
            or_(col(AuditEvent.actor_id) == query.actor, col(AuditEvent.actor_name) == query.actor)
        )
    if query.target:
        stmt = stmt.where(col(AuditEvent.target_id) == query.target)
    if query.start:
        stmt = stmt.where(col(AuditEvent.at) >= query.start)
    if query.end:
        stmt = stmt.where(col(AuditEvent.at) < query.end)
    if query.before:
        last = await session.get(AuditEvent, query.before)
        if last is not None:
            stmt = stmt.where(
                or_(
                    col(AuditEvent.at) < last.at,
                    and_(col(AuditEvent.at) == last.at, col(AuditEvent.id) < last.id),
                )
            )
    stmt = stmt.order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
    rows = list((await session.exec(stmt.limit(query.limit + 1))).all())
    return rows[: query.limit], len(rows) > query.limit


async def purge_events(session: AsyncSession, now: datetime, keep_days: int) -> int:
    """Delete events older than `keep_days`; returns how many."""
    cutoff = now - timedelta(days=keep_days)
    result = await session.exec(delete(AuditEvent).where(col(AuditEvent.at) < cutoff))
    return int(result.rowcount or 0)
