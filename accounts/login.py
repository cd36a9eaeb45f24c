"""Logging in: the throttle, the password check, the security events, and a fresh session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts import audit, service
from accounts.audit import Action, Actor, user_target
from accounts.errors import InvalidCredentials
from accounts.models import Organization, User
from accounts.passwords import verify_password
from accounts.throttle import Attempt, LoginThrottle, LoginThrottled
from infra.clock import Clock
from infra.db import Database


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """A successful login: who, and the value of their new session cookie."""

    user: User
    organization: Organization
    cookie_value: str


async def log_in(
    db: Database,
    throttle: LoginThrottle,
    clock: Clock,
    username: str,
    password: str,
    *,
    address: str,
    replaces: str | None,
    session_s: int,
) -> LoggedIn:
    """Check a username and password from `address` and start a session (ending the one whose
    cookie `replaces`); a failure is recorded and answered InvalidCredentials."""
    username = service.normalize_username(username)
    attempt = await _reserve(db, throttle, clock, username, address)
    try:
        async with db.read() as session:
            user = await service.find_user(session, username)
        ok = await verify_password(user.password_hash if user else None, password)
    except BaseException:
        await throttle.abandoned(attempt)
        raise
    now = clock.now()
    if user is None or not ok or not user.active or user.machine:
        # The reservation stays: it is the failure that counts.
        await _record_failure(db, user, ok, address, now)
        raise InvalidCredentials()
    await throttle.succeeded(attempt)
    return await _start_session(db, user, address, replaces, now, session_s)


async def _reserve(
    db: Database, throttle: LoginThrottle, clock: Clock, username: str, address: str
) -> Attempt:
    """A count on the throttle's counters; the first refusal in a window is recorded."""
    try:
        return await throttle.reserve(username, address)
    except LoginThrottled as exc:
        if exc.first:
            async with db.write() as session:
                user = await service.find_user(session, username) if exc.counter == "pair" else None
                await audit.record(
                    session,
                    Actor.of(None, address),
                    Action.LOGIN_THROTTLED,
                    clock.now(),
                    user_target(user),
                    counter=exc.counter,
                )
        raise


async def _record_failure(
    db: Database, user: User | None, password_ok: bool, address: str, now: datetime
) -> None:
    async with db.write() as session:
        await audit.record(
            session,
            Actor.of(None, address),
            Action.LOGIN_FAILED,
            now,
            user_target(user),
            reason=_failure_reason(user, password_ok),
        )


async def _start_session(
    db: Database, user: User, address: str, replaces: str | None, now: datetime, session_s: int
) -> LoggedIn:
    async with db.write() as session:
        # A fresh session id at every login: a planted cookie never becomes a login.
        if replaces:
            await service.end_session(session, replaces)
        new = await service.start_session(session, user, now, session_s)
        org = await service.get_organization(session, user.organization_id)
        await audit.record(
            session,
            Actor(user.id, user.username, user.role.value, "session", address),
            Action.LOGIN,
            now,
            user_target(user),
        )
    return LoggedIn(user, org, new.cookie_value)


def _failure_reason(user: User | None, password_ok: bool) -> str:
    if user is None:
        return "unknown_user"
    if not password_ok:
        return "wrong_password"
    return "machine_account" if user.machine else "inactive"
