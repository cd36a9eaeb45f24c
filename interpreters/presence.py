"""Presence rules: who may switch to which status, and the guarded updates that do it.

Every change is one guarded UPDATE on the interpreter row (checked by row count), so two
instances or a sweeper racing a click end in one consistent status.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, insert, literal, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.db import UTCDateTime, conflict_insert, dialect_of
from infra.errors import Conflict, NotFound
from infra.ids import new_id
from interpreters.models import (
    Interpreter,
    Presence,
    PresenceInstance,
    PresenceInterval,
    PresenceSocket,
)

SELF_SERVICE = frozenset({Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE})
"""Statuses an interpreter may choose; `busy` and `wrap_up` follow from calls."""


class InCall(Conflict):
    code = "in_call"
    default_message = "You are in a call; hang up first."


class NotAnInterpreter(NotFound):
    code = "not_an_interpreter"
    default_message = "No interpreter profile for this user."


async def set_own_status(
    session: AsyncSession, interpreter_id: str, status: Presence, now: datetime
) -> Interpreter:
    """An interpreter's own switch to available, away or offline; refused while busy.

    From wrap-up, `available` is "ready now": it ends the wrap-up early.
    """
    if status not in SELF_SERVICE:
        raise Conflict(f"{status.value!r} cannot be chosen; it follows from calls.")
    interpreter = await session.get(Interpreter, interpreter_id)
    if interpreter is None or not interpreter.active:
        raise NotAnInterpreter()
    if interpreter.status == Presence.BUSY:
        raise InCall()
    was = interpreter.status
    result = await session.exec(
        update(Interpreter)
        .where(col(Interpreter.user_id) == interpreter_id)
        .where(col(Interpreter.status) != Presence.BUSY)
        .values(
            status=status,
            status_changed_at=now
            if status != interpreter.status
            else interpreter.status_changed_at,
            wrap_up_until=None,
            missed_offers=0 if status == Presence.AVAILABLE else interpreter.missed_offers,
        )
    )
    if result.rowcount != 1:
        raise InCall()
    await record_online(session, [interpreter_id], was, status, now)
    await session.refresh(interpreter)
    return interpreter


async def record_online(
    session: AsyncSession,
    interpreter_ids: list[str],
    was: Presence,
    now_status: Presence,
    now: datetime,
) -> None:
    """Open or close the interpreters' online interval when a change crosses offline;
    every other change (available, away, busy, wrap-up) writes nothing."""
    if not interpreter_ids or (was == Presence.OFFLINE) == (now_status == Presence.OFFLINE):
        return
    if now_status == Presence.OFFLINE:
        await session.exec(
            update(PresenceInterval)
            .where(col(PresenceInterval.interpreter_id).in_(interpreter_ids))
            .where(col(PresenceInterval.ended_at).is_(None))
            .values(ended_at=now)
            .execution_options(synchronize_session=False)
        )
        return
    # After the guarded UPDATE holds the interpreter's row, so a second tab switching at
    # the same moment finds this interval and opens none of its own.
    for interpreter_id in interpreter_ids:
        still_open = select(PresenceInterval.id).where(
            col(PresenceInterval.interpreter_id) == interpreter_id,
            col(PresenceInterval.ended_at).is_(None),
        )
        await session.exec(
            insert(PresenceInterval).from_select(
                ["id", "interpreter_id", "started_at"],
                select(
                    literal(new_id()), literal(interpreter_id), literal(now, UTCDateTime())
                ).where(~exists(still_open)),
            )
        )


async def transition(
    session: AsyncSession,
    interpreter_id: str,
    *,
    from_statuses: frozenset[Presence],
    to: Presence,
    now: datetime,
    **values: object,
) -> bool:
    """Move an interpreter to `to` only if it is in one of `from_statuses`; True if it moved."""
    result = await session.exec(
        update(Interpreter)
        .where(col(Interpreter.user_id) == interpreter_id)
        .where(col(Interpreter.status).in_([s.value for s in from_statuses]))
        .values(status=to, status_changed_at=now, **values)
    )
    return bool(result.rowcount == 1)


async def socket_opened(
    session: AsyncSession, interpreter_id: str, socket_id: str, instance_id: str, now: datetime
) -> None:
    """Record an interpreter's open socket; it cancels a pending grace-period offline."""
    session.add(
        PresenceSocket(
            id=socket_id, interpreter_id=interpreter_id, instance_id=instance_id, opened_at=now
        )
    )
    await session.exec(
        update(Interpreter)
        .where(col(Interpreter.user_id) == interpreter_id)
        .values(offline_at=None)
    )


async def socket_closed(
    session: AsyncSession, interpreter_id: str, socket_id: str, now: datetime, grace_s: int
) -> None:
    """Forget a closed socket; with the interpreter's last one gone, the grace period starts."""
    await session.exec(delete(PresenceSocket).where(col(PresenceSocket.id) == socket_id))
    if not await _has_sockets(session, interpreter_id):
        await session.exec(
            update(Interpreter)
            .where(col(Interpreter.user_id) == interpreter_id)
            .values(offline_at=now + timedelta(seconds=grace_s))
        )


async def refresh_sockets(
    session: AsyncSession, instance_id: str, now: datetime, grace_s: int, stale_after_s: float
) -> None:
    """Say this instance and its sockets are alive, and drop the sockets of instances that died.

    One heartbeat row per instance, not a write per socket: at 10,000 sockets a per-socket
    refresh rewrote 10,000 rows every heartbeat. A socket goes with its instance once the
    instance has been silent for `stale_after_s` (or never spoke, for sockets at least that
    old). An interpreter left without any socket (its instance died, or it went available
    over HTTP alone) gets the grace period from now. This scans every online interpreter,
    so it runs once per heartbeat, not at every sweep.
    """
    await session.exec(
        conflict_insert(PresenceInstance, dialect_of(session))
        .values(instance_id=instance_id, seen_at=now)
        .on_conflict_do_update(index_elements=["instance_id"], set_={"seen_at": now})
    )
    stale_before = now - timedelta(seconds=stale_after_s)
    alive = select(PresenceInstance.instance_id).where(
        col(PresenceInstance.seen_at) >= stale_before
    )
    await session.exec(
        delete(PresenceSocket)
        .where(col(PresenceSocket.instance_id).not_in(alive))
        .where(col(PresenceSocket.opened_at) < stale_before)
    )
    await session.exec(delete(PresenceInstance).where(col(PresenceInstance.seen_at) < stale_before))
    await session.exec(
        update(Interpreter)
        .where(col(Interpreter.status) != Presence.OFFLINE)
        .where(col(Interpreter.offline_at).is_(None))
        .where(col(Interpreter.user_id).not_in(select(PresenceSocket.interpreter_id)))
        .values(offline_at=now + timedelta(seconds=grace_s))
    )


async def _has_sockets(session: AsyncSession, interpreter_id: str) -> bool:
    found = await session.exec(
        select(PresenceSocket.id)
        .where(col(PresenceSocket.interpreter_id) == interpreter_id)
        .limit(1)
    )
    return found.first() is not None


def _offline_due(now: datetime) -> list[ColumnElement[bool]]:
    # Busy interpreters are left to the call lifecycle.
    return [
        col(Interpreter.offline_at) <= now,
        col(Interpreter.status).in_([Presence.AVAILABLE, Presence.AWAY, Presence.WRAP_UP]),
        col(Interpreter.user_id).not_in(select(PresenceSocket.interpreter_id)),
    ]


async def offline_due(session: AsyncSession, now: datetime) -> bool:
    """Whether a sweep would set anyone offline now (a read, so that an idle sweep does
    not take SQLite's write lock every second)."""
    found = await session.exec(select(Interpreter.user_id).where(*_offline_due(now)).limit(1))
    return found.first() is not None


async def sweep_offline(session: AsyncSession, now: datetime) -> list[str]:
    """Set offline the interpreters whose grace period (after their last socket closed)
    ran out, in one statement however many they are. Returns the ids set offline."""
    result = await session.exec(
        update(Interpreter)
        .where(*_offline_due(now))
        .values(status=Presence.OFFLINE, status_changed_at=now, offline_at=None, wrap_up_until=None)
        .returning(col(Interpreter.user_id))
        .execution_options(synchronize_session=False)
    )
    gone = sorted(result.scalars())
    # Only online statuses are swept, so each of them ends an online interval.
    await record_online(session, gone, Presence.AVAILABLE, Presence.OFFLINE, now)
    return gone
