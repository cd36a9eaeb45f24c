"""Presence rules: who may switch to which status, and the guarded updates that do it.

Every change is one guarded UPDATE on the interpreter row (checked by row count), so two
instances or a sweeper racing a click end in one consistent status.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.errors import Conflict, NotFound
from interpreters.models import Interpreter, Presence

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
    await session.refresh(interpreter)
    return interpreter


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
