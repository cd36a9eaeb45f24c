"""Database leases: a job that must run once per period across instances takes one first."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, or_, update
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.db import UTCDateTime, conflict_insert, dialect_of


class Lease(SQLModel, table=True):
    """Who holds a named lease, and until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=100)
    holder: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def try_acquire(
    session: AsyncSession, name: str, holder: str, now: datetime, ttl_s: float
) -> bool:
    """Take or renew the lease `name` for `holder` unless another holder's lease is live."""
    expires = now + timedelta(seconds=ttl_s)
    await session.exec(
        conflict_insert(Lease, dialect_of(session))
        .values(name=name, holder=holder, expires_at=expires)
        .on_conflict_do_nothing()
    )
    result = await session.exec(
        update(Lease)
        .where(Lease.name == name)  # type: ignore[arg-type]
        .where(or_(Lease.holder == holder, Lease.expires_at <= now))  # type: ignore[arg-type]
        .values(holder=holder, expires_at=expires)
    )
    return bool(result.rowcount)
