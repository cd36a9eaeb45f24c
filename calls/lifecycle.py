"""The call lifecycle: joining a call room, media reports, hangup, seen-times and the sweep
that ends calls nobody is in any more (`lost`) or that never connected (`failed`).

Every state change is a guarded UPDATE checked by row count, so two instances, a sweeper
and a hangup racing each other end a call exactly once; the call-ended hooks run only in
the transaction that won.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calls.hooks import CallEndedHook
from calls.models import LIVE_CALL, Call, CallPresence, CallState, EndReason
from infra.clock import start_of_day
from infra.errors import Conflict, Forbidden, NotFound
from interpreters import presence
from interpreters.models import Presence

Side = Literal["counsellor", "interpreter"]
MediaState = Literal["connected", "disconnected", "failed"]


class CallNotFound(NotFound):
    code = "call_not_found"
    default_message = "No such call."


class NotAParticipant(Forbidden):
    code = "forbidden"
    default_message = "Only the call's two participants may do this."


class CallEnded(Conflict):
    code = "call_ended"
    default_message = "The call has ended."


class InCallAlready(Conflict):
    code = "in_call"
    default_message = "You are already in a call."


def call_channel(call_id: str) -> str:
    """The bus channel of a call room: presence news and call updates for every instance
    that holds a socket in the room."""
    return f"call:{call_id}"


# --- who is asking ---------------------------------------------------------------------


def side_of(call: Call, user_id: str) -> Side | None:
    """Which participant a user is in a call, if any."""
    if user_id == call.counsellor_id:
        return "counsellor"
    if user_id == call.interpreter_id:
        return "interpreter"
    return None


def peer_of(call: Call, user_id: str) -> str:
    """The other participant's user id."""
    return call.interpreter_id if user_id == call.counsellor_id else call.counsellor_id


async def participant_call(
    session: AsyncSession, call_id: str, user_id: str, *, admin: bool = False
) -> Call:
    """The call, if the user is one of its participants (or an admin looking)."""
    call = await session.get(Call, call_id)
    if call is None:
        raise CallNotFound()
    if side_of(call, user_id) is None and not admin:
        raise NotAParticipant()
    return call


async def joinable_call(session: AsyncSession, call_id: str, user_id: str) -> Call:
    """The call a participant asks to join; refused when it has ended."""
    call = await participant_call(session, call_id, user_id)
    if call.state == CallState.ENDED:
        raise CallEnded()
    return call


async def live_calls_of(session: AsyncSession, user_id: str) -> list[Call]:
    """The calls a user is in that have not ended."""
    rows = await session.exec(
        select(Call)
        .where(or_(col(Call.counsellor_id) == user_id, col(Call.interpreter_id) == user_id))
        .where(LIVE_CALL)
    )
    return list(rows.all())


async def interpreter_today(
    session: AsyncSession, interpreter_id: str, now: datetime, timezone: str
) -> tuple[int, int]:
    """(calls, seconds in them) of an interpreter's calls that connected since local midnight.

    A call counts for the day it connected, as billing counts it; one still running counts
    up to now.
    """
    midnight = start_of_day(now, timezone)
    rows = await session.exec(
        select(Call.connected_at, Call.ended_at)
        .where(col(Call.interpreter_id) == interpreter_id)
        .where(col(Call.connected_at) >= midnight)
        .where(col(Call.connected_at) <= now)
    )
    calls = 0
    talk_s = 0
    for connected_at, ended_at in rows:
        if connected_at is None:
            continue
        calls += 1
        talk_s += max(0, int(((ended_at or now) - connected_at).total_seconds()))
    return calls, talk_s


# --- starting ----------------------------------------------------------------------------


async def start_call(
    session: AsyncSession,
    call_id: str,
    *,
    request_id: str,
    counsellor_id: str,
    interpreter_id: str,
    organization_id: str,
    language: str,
    audio_only: bool,
    now: datetime,
    connect_timeout_s: int,
    room_id: str | None = None,
    site_id: str | None = None,
) -> Call:
    """A new call, connecting, for an accepted request (an interpreter's segment when the
    request was made into a consultation room); 409 when the interpreter is in a live call
    already (the database holds one live call per interpreter)."""
    call = Call(
        id=call_id,
        request_id=request_id,
        counsellor_id=counsellor_id,
        interpreter_id=interpreter_id,
        organization_id=organization_id,
        language=language,
        audio_only=audio_only,
        state=CallState.CONNECTING,
        created_at=now,
        connect_deadline=now + timedelta(seconds=connect_timeout_s),
        room_id=room_id,
        site_id=site_id,
    )
    session.add(call)
    try:
        await session.flush()
    except IntegrityError:
        raise InCallAlready() from None
    return call


# --- room presence and seen-times ------------------------------------------------------


def _seen_column(side: Side) -> str:
    return f"{side}_seen_at"


async def join_call(
    session: AsyncSession,
    call_id: str,
    user_id: str,
    *,
    socket_id: str,
    instance_id: str,
    now: datetime,
    fresh_after: datetime,
) -> tuple[Call, list[CallPresence]]:
    """Record that a participant's socket joined the room; returns the call and the live
    presence rows of the room (rows seen after `fresh_after`)."""
    call = await joinable_call(session, call_id, user_id)
    side = side_of(call, user_id)
    assert side is not None
    result = await session.exec(
        update(Call)
        .where(col(Call.id) == call_id)
        .where(LIVE_CALL)
        .values({_seen_column(side): now})
    )
    if result.rowcount != 1:
        raise CallEnded()
    existing = await session.get(CallPresence, socket_id)
    if existing is None:
        session.add(
            CallPresence(
                socket_id=socket_id,
                call_id=call_id,
                user_id=user_id,
                instance_id=instance_id,
                seen_at=now,
            )
        )
    else:
        existing.seen_at = now
    await session.flush()
    rows = (
        await session.exec(
            select(CallPresence)
            .where(col(CallPresence.call_id) == call_id)
            .where(col(CallPresence.seen_at) > fresh_after)
        )
    ).all()
    await session.refresh(call)
    return call, list(rows)


async def leave_call(
    session: AsyncSession, call_id: str, user_id: str, *, socket_id: str, side: Side, now: datetime
) -> None:
    """A participant's socket left the room (closed): it was last seen now."""
    await session.exec(delete(CallPresence).where(col(CallPresence.socket_id) == socket_id))
    await session.exec(
        update(Call)
        .where(col(Call.id) == call_id)
        .where(LIVE_CALL)
        .values({_seen_column(side): now})
    )


async def record_seen(
    session: AsyncSession,
    *,
    counsellor_calls: Sequence[str],
    interpreter_calls: Sequence[str],
    socket_ids: Sequence[str],
    now: datetime,
) -> None:
    """Heartbeat of one instance: its participants are still in these calls."""
    for side, ids in (("counsellor", counsellor_calls), ("interpreter", interpreter_calls)):
        if ids:
            await session.exec(
                update(Call)
                .where(col(Call.id).in_(list(ids)))
                .where(LIVE_CALL)
                .values({_seen_column(side): now})  # type: ignore[arg-type]
            )
    if socket_ids:
        await session.exec(
            update(CallPresence)
            .where(col(CallPresence.socket_id).in_(list(socket_ids)))
            .values(seen_at=now)
        )


async def live_presence(
    session: AsyncSession, call_ids: Sequence[str], fresh_after: datetime
) -> list[CallPresence]:
    """Presence rows of these rooms seen after `fresh_after` (on any instance)."""
    if not call_ids:
        return []
    rows = await session.exec(
        select(CallPresence)
        .where(col(CallPresence.call_id).in_(list(call_ids)))
        .where(col(CallPresence.seen_at) > fresh_after)
    )
    return list(rows.all())


async def count_live_calls(session: AsyncSession) -> dict[str, int]:
    """Calls not ended, by state, in the whole service (for the metrics)."""
    rows = await session.exec(
        select(Call.state, func.count())
        .where(col(Call.state) != CallState.ENDED)
        .group_by(col(Call.state))
    )
    return {str(state): count for state, count in rows}


# --- media and connection --------------------------------------------------------------


async def report_media(
    session: AsyncSession, call_id: str, user_id: str, state: MediaState, now: datetime
) -> tuple[Call, bool]:
    """Record one side's RTCPeerConnection state; the call becomes `connected` (the start
    of billing) once both sides have reported `connected`. True when the call changed state."""
    call = await joinable_call(session, call_id, user_id)
    side = side_of(call, user_id)
    assert side is not None
    await session.exec(
        update(Call)
        .where(col(Call.id) == call_id)
        .where(LIVE_CALL)
        .values({f"{side}_media": state, _seen_column(side): now})
    )
    # Row locks (PostgreSQL) or BEGIN IMMEDIATE (SQLite) serialise the two sides' reports,
    # so the second report always sees the first and exactly one of them connects the call.
    result = await session.exec(
        update(Call)
        .where(col(Call.id) == call_id)
        .where(col(Call.state) == CallState.CONNECTING)
        .where(col(Call.counsellor_media) == "connected")
        .where(col(Call.interpreter_media) == "connected")
        .values(state=CallState.CONNECTED, connected_at=now)
    )
    await session.refresh(call)
    return call, result.rowcount == 1


# --- ending ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    """A call this transaction ended, and whether its interpreter went into wrap-up."""

    call: Call
    wrap_up: bool


async def end_call(
    session: AsyncSession,
    call: Call,
    *,
    reason: EndReason,
    ended_at: datetime | None = None,
    now: datetime,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
    guard: Any = None,
) -> Ending | None:
    """End a call exactly once, as at `ended_at` (default `now`); None when it had already
    ended (or `guard` no longer holds).

    The winner deletes the room's presence, moves the interpreter from busy to wrap-up and
    runs the call-ended hooks, all in this transaction.
    """
    ended_at = ended_at or now
    statement = (
        update(Call)
        .where(col(Call.id) == call.id)
        .where(LIVE_CALL)
        .values(state=CallState.ENDED, ended_at=ended_at, end_reason=reason.value)
    )
    if guard is not None:
        statement = statement.where(guard)
    result = await session.exec(statement)
    if result.rowcount != 1:
        return None
    await session.refresh(call)
    await session.exec(delete(CallPresence).where(col(CallPresence.call_id) == call.id))
    wrap_up = await presence.transition(
        session,
        call.interpreter_id,
        from_statuses=frozenset({Presence.BUSY}),
        to=Presence.WRAP_UP,
        now=now,
        wrap_up_until=now + timedelta(seconds=wrap_up_s),
        idle_since=ended_at,
    )
    for hook in hooks:
        await hook(session, call)
    return Ending(call, wrap_up)


async def hang_up(
    session: AsyncSession,
    call_id: str,
    user_id: str,
    *,
    now: datetime,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
) -> tuple[Call, Ending | None]:
    """A participant hangs up; hanging up an ended call is a no-op that returns it."""
    call = await participant_call(session, call_id, user_id)
    if call.state == CallState.ENDED:
        return call, None
    ending = await end_call(
        session, call, reason=EndReason.HANGUP, now=now, wrap_up_s=wrap_up_s, hooks=hooks
    )
    if ending is None:
        await session.refresh(call)
    return call, ending


# --- the sweep -------------------------------------------------------------------------


async def due_calls(
    session: AsyncSession, now: datetime, *, rejoin_grace_s: int, connect_timeout_s: int
) -> list[str]:
    """Ids of live calls a sweep should end: never connected by their deadline, or
    connected with nobody seen within the rejoin grace."""
    created_before = now - timedelta(seconds=connect_timeout_s)
    never_connected = and_(
        col(Call.state) == CallState.CONNECTING,
        or_(
            and_(col(Call.connect_deadline).is_not(None), col(Call.connect_deadline) <= now),
            and_(col(Call.connect_deadline).is_(None), col(Call.created_at) <= created_before),
        ),
    )
    abandoned = _nobody_seen_since(now - timedelta(seconds=rejoin_grace_s))
    rows = await session.exec(select(Call.id).where(or_(never_connected, abandoned)).limit(500))
    return list(rows.all())


def _nobody_seen_since(seen_before: datetime) -> ColumnElement[bool]:
    """A connected call in which neither participant has been seen since `seen_before`."""
    return and_(
        col(Call.state) == CallState.CONNECTED,
        or_(col(Call.counsellor_seen_at).is_(None), col(Call.counsellor_seen_at) <= seen_before),
        or_(col(Call.interpreter_seen_at).is_(None), col(Call.interpreter_seen_at) <= seen_before),
    )


async def end_due_call(
    session: AsyncSession,
    call_id: str,
    now: datetime,
    *,
    rejoin_grace_s: int,
    connect_timeout_s: int,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
) -> Ending | None:
    """End one call the sweep found, if it is still due (a rejoin may have saved it)."""
    call = await session.get(Call, call_id)
    if call is None or call.state == CallState.ENDED:
        return None
    due = _due_end(call, now, rejoin_grace_s, connect_timeout_s)
    if due is None:
        return None
    return await end_call(
        session,
        call,
        reason=due.reason,
        ended_at=due.ended_at,
        now=now,
        wrap_up_s=wrap_up_s,
        hooks=hooks,
        guard=due.guard,
    )


@dataclass(frozen=True)
class _DueEnd:
    """How a call the sweep found ends: why, when, and what its UPDATE checks again."""

    reason: EndReason
    ended_at: datetime
    guard: ColumnElement[bool]


def _due_end(
    call: Call, now: datetime, rejoin_grace_s: int, connect_timeout_s: int
) -> _DueEnd | None:
    """How a live call ends now: failed when it never connected by its deadline, lost when
    nobody was seen within the rejoin grace; None while it is not due."""
    if call.state == CallState.CONNECTING:
        deadline = call.connect_deadline or call.created_at + timedelta(seconds=connect_timeout_s)
        if deadline > now:
            return None
        # Not billable: connected_at stays null.
        return _DueEnd(EndReason.FAILED, now, col(Call.state) == CallState.CONNECTING)
    seen = [t for t in (call.counsellor_seen_at, call.interpreter_seen_at) if t is not None]
    last_seen = max(seen) if seen else call.connected_at or call.created_at
    if last_seen > now - timedelta(seconds=rejoin_grace_s):
        return None
    # The guard re-checks the seen-times: a participant who rejoined since we read the row
    # has moved them forward, and the call lives on.
    guard = _nobody_seen_since(now - timedelta(seconds=rejoin_grace_s))
    return _DueEnd(EndReason.LOST, max(last_seen, call.connected_at or last_seen), guard)


async def stale_presence_exists(session: AsyncSession, stale_before: datetime) -> bool:
    """Whether any room presence row went unrefreshed (read first: most sweeps find none,
    and need not take SQLite's write lock)."""
    found = await session.exec(
        select(CallPresence.call_id).where(col(CallPresence.seen_at) < stale_before).limit(1)
    )
    return found.first() is not None


async def purge_stale_presence(session: AsyncSession, stale_before: datetime) -> int:
    """Drop presence rows nobody refreshed (their instance died); returns how many."""
    result = await session.exec(
        delete(CallPresence).where(col(CallPresence.seen_at) < stale_before)
    )
    return int(result.rowcount or 0)
