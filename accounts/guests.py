"""Guests: clients invited into one consultation room by link. A guest has no account; a
cookie session (stored as a SHA-256, like a login session) names the guest and the room,
and ends with the room."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import GuestSession, Role
from accounts.service import session_key, token_digest
from accounts.views import Identity

GUEST_COOKIE = "tolk_guest"


def new_guest_id() -> str:
    """An opaque participant id that can never be mistaken for a user id."""
    return "g" + secrets.token_hex(12)


def guest_identity(row: GuestSession) -> Identity:
    """Who a guest session's holder is: the guest role, bound to the room."""
    return Identity(
        user_id=row.guest_id,
        username="",
        display_name=row.display_name,
        role=Role.GUEST,
        organization_id=row.organization_id,
        organization_name="",
        session_key=session_key(row.token_hash),
        room_id=row.room_id,
        language=row.language,
    )


async def open_guest_session(
    session: AsyncSession,
    *,
    room_id: str,
    organization_id: str,
    display_name: str,
    language: str | None,
    now: datetime,
    expires_at: datetime,
) -> tuple[GuestSession, str]:
    """A new guest of a room; returns the row and the cookie value (shown only here)."""
    cookie = secrets.token_urlsafe(32)
    row = GuestSession(
        token_hash=token_digest(cookie),
        guest_id=new_guest_id(),
        room_id=room_id,
        organization_id=organization_id,
        display_name=display_name,
        language=language,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return row, cookie


async def resolve_guest(session: AsyncSession, cookie: str, now: datetime) -> Identity | None:
    """The guest holding this cookie, while the session and its room last."""
    row = await session.get(GuestSession, token_digest(cookie))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return guest_identity(row)


async def end_guest_sessions(session: AsyncSession, room_id: str, now: datetime) -> None:
    """The room ended: its guests' cookies open nothing any more."""
    await session.exec(
        update(GuestSession)
        .where(col(GuestSession.room_id) == room_id)
        .where(col(GuestSession.ended_at).is_(None))
        .values(ended_at=now)
    )
