"""Self-service terminals: device accounts of an organisation that ask for interpreters.

A terminal is a user of role `terminal` (a machine account: no password, no API token)
that an admin adds. It logs in once with a one-time device link (a `password_link` row of
the terminal: stored as a SHA-256, shown once), which starts a long device session without
idle timeout; opening a link ends the terminal's earlier device sessions, so a terminal is
logged in on one device. Revoking ends its sessions and unused links at once; a new link
brings a revoked terminal back. Every step is a security event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import audit, service
from accounts.audit import Action, Actor, AuditedChange, Target
from accounts.errors import LinkNotValid, UnknownSite
from accounts.models import LoginSession, Organization, PasswordLink, Role, Site, User
from accounts.password_links import (
    NewLink,
    drop_unused_links,
    replace_links,
    spend_link,
    usable_link,
)
from infra.clock import Clock
from infra.db import Database
from infra.errors import NotFound

PAGE = "/device"
"""The page a device link opens; the secret follows `#`, so it never reaches a server log."""


def device_url(origin: str, link: NewLink) -> str:
    """A device link as the admin hands it over (or types it into the device's browser)."""
    return f"{origin}{PAGE}#{link.secret}"


def _target(user: User) -> Target:
    return Target("terminal", user.id, user.display_name)


async def get_terminal(session: AsyncSession, terminal_id: str) -> User:
    """The terminal with that id, or NotFound (also for a user of another role)."""
    user = await session.get(User, terminal_id)
    if user is None or user.role != Role.TERMINAL:
        raise NotFound("No such terminal.")
    return user


async def create_terminal(
    session: AsyncSession, name: str, site_id: str, now: datetime, username: str | None = None
) -> User:
    """A terminal row at an active site, of the site's organisation (UnknownSite else)."""
    site = await session.get(Site, site_id)
    if site is None or not site.active:
        raise UnknownSite(field="site_id")
    user = await service.create_user(
        session,
        username=username or "terminal." + secrets.token_hex(5),
        password_hash=service.NO_PASSWORD,
        display_name=name,
        role=Role.TERMINAL,
        organization_id=site.organization_id,
        now=now,
        machine=True,
    )
    user.site_id = site.id
    session.add(user)
    return user


async def add_terminal(
    change: AuditedChange, name: str, site_id: str, link_s: int
) -> tuple[User, Organization, NewLink]:
    """Add a terminal at a site (its calls are billed to the site's organisation) and make
    its first device link."""
    user = await create_terminal(change.session, name, site_id, change.now)
    org = await service.get_organization(change.session, user.organization_id)
    await change.record(
        Action.TERMINAL_CREATED, _target(user), organization_id=org.id, site_id=site_id
    )
    return user, org, await _new_link(change, user, link_s)


async def issue_link(change: AuditedChange, terminal_id: str, link_s: int) -> NewLink:
    """A new device link for a terminal (a revoked one becomes active again); it replaces
    the terminal's unused links, and its use will end the terminal's current session."""
    user = await get_terminal(change.session, terminal_id)
    if not user.active:
        user.active = True
        change.session.add(user)
    return await _new_link(change, user, link_s)


async def _new_link(change: AuditedChange, user: User, link_s: int) -> NewLink:
    link = await replace_links(change.session, user.id, change.who, change.now, link_s)
    await change.record(Action.TERMINAL_LINK_CREATED, _target(user), expires_at=link.expires_at)
    return link


async def revoke_terminal(change: AuditedChange, terminal_id: str) -> User:
    """Log a terminal out everywhere and make its links useless, at once."""
    user = await get_terminal(change.session, terminal_id)
    user.active = False
    change.session.add(user)
    await service.end_user_credentials(change.session, user.id, change.now)
    await drop_unused_links(change.session, user.id)
    await change.record(Action.TERMINAL_REVOKED, _target(user))
    return user


@dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A device logged in with its link: the terminal, its new session cookie and the
    keys of the sessions it replaced (whose sockets must close)."""

    user: User
    organization: Organization
    site: Site | None
    cookie_value: str
    replaced: tuple[str, ...]


async def open_device_session(
    db: Database, clock: Clock, secret: str, address: str, session_s: int
) -> DeviceLogin:
    """Use a device link up and start the terminal's device session in its place (its
    other sessions end); LinkNotValid when the link is unknown, spent, expired or not a
    terminal's."""
    now = clock.now()
    async with db.write() as session:
        link, user = await usable_link(session, secret, now)
        if user.role != Role.TERMINAL:
            raise LinkNotValid(field="token")
        await spend_link(session, link, now)
        hashes = await session.exec(
            select(LoginSession.token_hash).where(col(LoginSession.user_id) == user.id)
        )
        replaced = tuple(service.session_key(h) for h in hashes)
        await service.end_user_sessions(session, user.id)
        new = await service.start_session(session, user, now, session_s, device=True)
        org = await service.get_organization(session, user.organization_id)
        site = await session.get(Site, user.site_id) if user.site_id else None
        actor = Actor(user.id, user.username, user.role.value, "link", address)
        await audit.record(session, actor, Action.LOGIN, now, _target(user))
    return DeviceLogin(user, org, site, new.cookie_value, replaced)


@dataclass(frozen=True, slots=True)
class TerminalRow:
    """A terminal as the admin's list shows it."""

    user: User
    organization: Organization
    site: Site | None
    last_seen_at: datetime | None
    """When its device session was last used (None: not logged in)."""
    link_expires_at: datetime | None
    """Until when its unused device link works (None: no link waiting)."""


async def list_terminals(session: AsyncSession, now: datetime) -> list[TerminalRow]:
    """Every terminal with its organisation, site, device session and waiting link, by
    name."""
    seen = (
        select(LoginSession.user_id, func.max(LoginSession.last_seen_at).label("seen"))
        .where(col(LoginSession.expires_at) > now)
        .group_by(col(LoginSession.user_id))
        .subquery()
    )
    waiting = (
        select(PasswordLink.user_id, func.max(PasswordLink.expires_at).label("until"))
        .where(col(PasswordLink.used_at).is_(None), col(PasswordLink.expires_at) > now)
        .group_by(col(PasswordLink.user_id))
        .subquery()
    )
    query = (
        select(User, Organization, seen.c.seen, waiting.c.until)
        .join(Organization, col(Organization.id) == col(User.organization_id))
        .outerjoin(seen, seen.c.user_id == col(User.id))
        .outerjoin(waiting, waiting.c.user_id == col(User.id))
        .where(col(User.role) == Role.TERMINAL)
        .order_by(col(User.display_name), col(User.id))
    )
    rows = (await session.exec(query)).all()
    site_ids = {u.site_id for u, *_ in rows if u.site_id is not None}
    found = await session.exec(select(Site).where(col(Site.id).in_(site_ids)))
    places = {site.id: site for site in found}
    return [TerminalRow(u, o, places.get(u.site_id or ""), s, w) for u, o, s, w in rows]
