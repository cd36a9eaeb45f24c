"""Interpreter pools as admins manage them: a name, a tier (in-house staff are asked
before external interpreters) and an escalation time. Services take the session and
never commit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.errors import Conflict, InvalidInput, NotFound
from interpreters.models import Interpreter, InterpreterPool, PoolTier


class UnknownPool(NotFound):
    code = "unknown_pool"
    default_message = "There is no such pool."


class UnknownPoolField(InvalidInput):
    code = "unknown_pool"
    default_message = "There is no such pool."


class PoolExists(Conflict):
    code = "pool_exists"
    default_message = "A pool of that name exists."


class PoolNotInHouse(InvalidInput):
    code = "pool_not_in_house"
    default_message = "Colleagues who are not interpreters can only join an in-house pool."


class PoolView(BaseModel):
    """A pool on the wire, with how many active interpreters it has."""

    id: str
    name: str
    tier: PoolTier
    escalation_s: int
    members: int


async def list_pools(session: AsyncSession) -> list[PoolView]:
    """Every pool, in-house first, then by name, with its active members counted."""
    members = dict(
        (
            await session.exec(
                select(col(Interpreter.pool_id), func.count())
                .where(col(Interpreter.active).is_(True))
                .group_by(col(Interpreter.pool_id))
            )
        ).all()
    )
    pools = (await session.exec(select(InterpreterPool))).all()
    order = {tier: i for i, tier in enumerate(PoolTier)}
    return [
        PoolView(
            id=p.id,
            name=p.name,
            tier=p.tier,
            escalation_s=p.escalation_s,
            members=members.get(p.id, 0),
        )
        for p in sorted(pools, key=lambda p: (order[PoolTier(p.tier)], p.name))
    ]


async def _name_free(session: AsyncSession, name: str, pool_id: str | None = None) -> None:
    found = (
        await session.exec(select(InterpreterPool.id).where(col(InterpreterPool.name) == name))
    ).first()
    if found is not None and found != pool_id:
        raise PoolExists(field="name")


async def create_pool(session: AsyncSession, name: str, tier: PoolTier, escalation_s: int) -> str:
    """Add a pool; 409 `pool_exists` for a name in use."""
    await _name_free(session, name)
    pool = InterpreterPool(name=name, tier=tier, escalation_s=escalation_s)
    session.add(pool)
    await session.flush()
    return pool.id


async def update_pool(session: AsyncSession, pool_id: str, changes: dict[str, Any]) -> None:
    """Change a pool's name, tier or escalation time (404 `unknown_pool`)."""
    pool = await session.get(InterpreterPool, pool_id)
    if pool is None:
        raise UnknownPool()
    if "name" in changes:
        await _name_free(session, changes["name"], pool_id)
    for name, value in changes.items():
        setattr(pool, name, value)
    session.add(pool)
    await session.flush()


async def pool_tier(session: AsyncSession, pool_id: str) -> PoolTier:
    """The tier of a pool named in a profile (422 `unknown_pool` naming `pool_id`)."""
    pool = await session.get(InterpreterPool, pool_id)
    if pool is None:
        raise UnknownPoolField(field="pool_id")
    return PoolTier(pool.tier)
