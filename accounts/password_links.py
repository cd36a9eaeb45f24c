"""One-time "set your password" links: an admin makes one for a new, imported or locked-out
user and hands it over (no e-mail server needed); the user opens it and sets a password.

Only a SHA-256 of the link's secret is stored; the secret is shown once. A link works
once, until it expires, and a newer link of the same user replaces the older ones.
Setting a password through a link ends the user's sessions and tokens, as an admin's
password change does, and both steps are security events.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import audit, service
from accounts.audit import Action, Actor, user_target
from accounts.errors import LinkNotValid, NoPasswordForMachines
from accounts.models import PasswordLink, User
from accounts.passwords import hash_password
from accounts.users import check_password
from infra.clock import Clock
from infra.db import Database

PAGE = "/set-password"
"""The page a link opens; the secret follows `#`, so it never reaches a server log."""


@dataclass(frozen=True, slots=True)
class NewLink:
    """A link just made: `secret` goes to the admin, once."""

    secret: str
    expires_at: datetime

    def url(self, origin: str) -> str:
        """The link as the admin hands it over."""
        return f"{origin}{PAGE}#{self.secret}"


async def create_link(
    session: AsyncSession, user_id: str, who: Actor, now: datetime, valid_s: int
) -> NewLink:
    """Make a link for a person (not a machine account), replacing their older links."""
    user = await service.get_user(session, user_id)
    if user.machine:
        raise NoPasswordForMachines(field="user_id")
    link = await replace_links(session, user.id, who, now, valid_s)
    await audit.record(
        session,
        who,
        Action.PASSWORD_LINK_CREATED,
        now,
        user_target(user),
        expires_at=link.expires_at,
    )
    return link


async def replace_links(
    session: AsyncSession, user_id: str, who: Actor, now: datetime, valid_s: int
) -> NewLink:
    """A new one-time link of a user, in place of their unused ones (the caller checks whom
    it is for and records the event)."""
    await drop_unused_links(session, user_id)
    secret = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=valid_s)
    session.add(
        PasswordLink(
            user_id=user_id,
            token_hash=service.token_digest(secret),
            created_at=now,
            created_by=who.user_id,
            expires_at=expires,
        )
    )
    return NewLink(secret, expires)


async def drop_unused_links(session: AsyncSession, user_id: str) -> None:
    """Make a user's unused links open nothing any more."""
    await session.exec(
        delete(PasswordLink).where(
            col(PasswordLink.user_id) == user_id, col(PasswordLink.used_at).is_(None)
        )
    )


async def spend_link(session: AsyncSession, link: PasswordLink, now: datetime) -> None:
    """Use a link up; LinkNotValid when another use was first (even at the same moment)."""
    spent = await session.exec(
        update(PasswordLink)
        .where(col(PasswordLink.id) == link.id, col(PasswordLink.used_at).is_(None))
        .values(used_at=now)
    )
    if not spent.rowcount:
        raise LinkNotValid(field="token")


async def usable_link(
    session: AsyncSession, secret: str, now: datetime
) -> tuple[PasswordLink, User]:
    """The unused, unexpired link of an active user with this secret, else LinkNotValid."""
    found = (
        await session.exec(
            select(PasswordLink, User)
            .join(User, col(User.id) == PasswordLink.user_id)
            .where(PasswordLink.token_hash == service.token_digest(secret))
        )
    ).first()
    if found is None:
        raise LinkNotValid(field="token")
    link, user = found
    if link.used_at is not None or link.expires_at <= now or not user.active:
        raise LinkNotValid(field="token")
    return link, user


async def _usable(session: AsyncSession, secret: str, now: datetime) -> tuple[PasswordLink, User]:
    # A terminal's device link (a machine account's) sets no password.
    link, user = await usable_link(session, secret, now)
    if user.machine:
        raise LinkNotValid(field="token")
    return link, user


async def link_user(db: Database, secret: str, now: datetime) -> User:
    """Whose password a link sets (the page greets them); LinkNotValid when it is spent."""
    async with db.read() as session:
        _, user = await _usable(session, secret, now)
    return user


async def set_password_by_link(
    db: Database, clock: Clock, secret: str, password: str, who: Actor, min_length: int
) -> User:
    """Set the password a link is for, once: the link is spent in the same transaction
    (a second use, even at the same moment, finds it spent)."""
    user = await link_user(db, secret, clock.now())
    check_password(password, user.username, min_length)
    password_hash = await hash_password(password)
    now = clock.now()
    async with db.write() as session:
        link, user = await _usable(session, secret, now)
        await spend_link(session, link, now)
        user.password_hash = password_hash
        session.add(user)
        await service.end_user_credentials(session, user.id, now)
        actor = Actor(user.id, user.username, user.role.value, "link", who.address)
        await audit.record(session, actor, Action.PASSWORD_CHANGED, now, user_target(user))
    return user
