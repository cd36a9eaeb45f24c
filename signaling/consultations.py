"""Consultation rooms on the socket: `room.join`, `signal` with `to`, `room.media` and
`room.leave`; `room.joined` and `room.participant` back. Only a room's participants may
send any of them about it.

As the call rooms (signaling/rooms.py) do, who is in a room across instances is recorded in
the database (`room_presence` rows, refreshed every heartbeat) and mirrored in memory on
each instance that holds a socket of the room, which subscribes to the room's bus channel
for joins, leaves and changes. The relay reads only the mirror; a signal for someone not
present is held for `signal_hold_s` and delivered when they join. Leaving for good, the
hand-over and the room's end are decided in `calls.consultation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from aiohttp import web
from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Role
from calls import consultation, lifecycle
from calls.announce import publish_call
from calls.consultation import NotInRoom, RoomEnded, room_channel
from calls.ending import CALL_ENDING, CallEnding
from calls.models import (
    Call,
    CallState,
    EndReason,
    ParticipantRole,
    Room,
    RoomParticipant,
    RoomPresence,
    RoomState,
)
from calls.views import load_call_view
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import Subscription, publish_json, user_channel
from signaling.hub import Connection
from signaling.ice import ice_servers_for
from signaling.mirror import STALE_HEARTBEATS, HeldSignals, Mirrors, RoomServices, unsubscribe
from wire.client import RoomJoin, RoomLeave, RoomMedia, Signal
from wire.server import RoomJoined, RoomUpdated
from wire.server import RoomParticipant as ParticipantMessage

log = structlog.get_logger(__name__)


@dataclass
class Mirror:
    """One consultation room as this instance sees it."""

    room_id: str
    members: dict[str, RoomParticipant] = field(default_factory=dict)
    """Who belongs in the room, by participant id (read from the database)."""
    local: dict[str, Connection] = field(default_factory=dict)
    present: dict[str, set[str]] = field(default_factory=dict)
    """Per participant, its sockets in the room on any instance."""
    gone: set[str] = field(default_factory=set)
    held: HeldSignals = field(default_factory=HeldSignals)
    subscription: Subscription | None = None
    pending: int = 0
    incoming_call: str | None = None
    """The room's current segment (`room.call_id`): its interpreter is the polite one of a
    hand-over."""
    closed: bool = False

    def is_present(self, participant_id: str) -> bool:
        return bool(self.present.get(participant_id))


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a join recorded, read in its transaction."""

    rows: list[RoomParticipant]
    present: list[tuple[str, str]]
    """(participant, socket) of the fresh presence rows."""
    endings: list[Any]
    """Segments the join ended (a hand-over completed)."""
    incoming_call: str | None
    came_back: bool
    """A guest who had left came back: the room's members changed."""


class Consultations(Mirrors[Mirror]):
    """This instance's consultation rooms."""

    def __init__(self, services: RoomServices, *, ending: CallEnding) -> None:
        super().__init__(services)
        self._ending = ending
        self._joined: dict[str, set[str]] = {}
        """Per socket id, the rooms it joined here."""

    @property
    def stale_after(self) -> timedelta:
        """How old a presence row may be before it counts as gone."""
        return timedelta(seconds=STALE_HEARTBEATS * self._settings.ws_heartbeat_s)

    def joined(self, conn: Connection, room_id: str) -> bool:
        """Whether the socket has joined the room here."""
        return room_id in self._joined.get(conn.id, ())

    # --- the mirror ------------------------------------------------------------------

    def _hear(self, mirror: Mirror, news: dict[str, Any]) -> None:
        kind = news.get("type")
        if kind == "room.join":
            if news["participant_id"] not in mirror.members:
                self._tasks.spawn(
                    self._reload(mirror, then_add=(news["participant_id"], news["socket_id"]))
                )
            else:
                self._add(mirror, news["participant_id"], news["socket_id"])
        elif kind == "room.leave":
            self._remove(mirror, news["participant_id"], news["socket_id"])
        elif kind == "room.changed":
            self._tasks.spawn(self._reload(mirror))

    async def _reload(self, mirror: Mirror, then_add: tuple[str, str] | None = None) -> None:
        """Re-read who belongs in the room: tell local sockets of those who left for good,
        drop everyone here when the room ended."""
        try:
            async with self._db.read() as session:
                room = await session.get(Room, mirror.room_id)
                rows = await consultation.participants(session, mirror.room_id)
        except Exception:
            log.exception("room_reload_failed", room_id=mirror.room_id)
            return
        if room is None or room.state != RoomState.OPEN:
            self._ended(mirror)
            return
        self._set_members(mirror, rows, room.call_id)
        if then_add is not None:
            self._add(mirror, *then_add)

    def _set_members(
        self, mirror: Mirror, rows: list[RoomParticipant], incoming_call: str | None
    ) -> None:
        """Who belongs in the room now; local sockets hear of those who left for good."""
        members = {r.participant_id: r for r in rows}
        mirror.incoming_call = incoming_call
        gone = [row for pid, row in mirror.members.items() if pid not in members]
        mirror.members = members
        for row in gone:
            mirror.present.pop(row.participant_id, None)
            mirror.held.drop(row.participant_id)
            self._tell_others(mirror, row, present=False, left=True)
            for conn in [c for c in mirror.local.values() if c.user_id == row.participant_id]:
                # A participant who left for good may no longer signal in the room.
                del mirror.local[conn.id]
                self._joined.get(conn.id, set()).discard(mirror.room_id)

    def _add(self, mirror: Mirror, participant_id: str, socket_id: str) -> None:
        if socket_id in mirror.gone or participant_id not in mirror.members:
            return
        sockets = mirror.present.setdefault(participant_id, set())
        if socket_id in sockets:
            return
        sockets.add(socket_id)
        if len(sockets) == 1:
            self._tell_others(mirror, mirror.members[participant_id], present=True, left=False)
            if mirror.held.waiting(participant_id):
                self._tasks.spawn(self._deliver_held(mirror, participant_id))

    def _remove(self, mirror: Mirror, participant_id: str, socket_id: str) -> None:
        mirror.gone.add(socket_id)
        sockets = mirror.present.get(participant_id)
        if not sockets or socket_id not in sockets:
            return
        sockets.discard(socket_id)
        if not sockets and participant_id in mirror.members:
            self._tell_others(mirror, mirror.members[participant_id], present=False, left=False)

    def _tell_others(
        self, mirror: Mirror, row: RoomParticipant, *, present: bool, left: bool
    ) -> None:
        view = consultation.participant_view(row, present)
        for conn in mirror.local.values():
            me = mirror.members.get(conn.user_id)
            if conn.user_id == row.participant_id or me is None:
                continue
            conn.send(
                ParticipantMessage(
                    room_id=mirror.room_id,
                    participant=view,
                    polite=consultation.polite(me, row, mirror.incoming_call),
                    left=left,
                )
            )

    def _ended(self, mirror: Mirror) -> None:
        for conn in mirror.local.values():
            self._joined.get(conn.id, set()).discard(mirror.room_id)
        mirror.local.clear()
        mirror.held.clear()
        self._tasks.spawn(self._release(mirror.room_id, mirror))

    # --- the relay -------------------------------------------------------------------

    async def relay(self, conn: Connection, msg: Signal) -> None:
        """Pass a signal to participant `to`, or hold it while they are away."""
        room_id, to = msg.room_id, msg.to
        assert room_id is not None
        assert to is not None
        mirror = self._rooms.get(room_id)
        if mirror is None or not self.joined(conn, room_id):
            raise NotInRoom()
        if to not in mirror.members:
            await self._reload(mirror)
        if to not in mirror.members or to == conn.user_id:
            raise NotInRoom("A signal goes to another participant of the room.")
        payload = orjson.dumps(
            {"type": "signal", "room_id": room_id, "from": conn.user_id, "data": msg.data}
        )
        if not mirror.held.waiting(to) and mirror.is_present(to):
            await self._bus.publish(user_channel(to), payload)
            return
        hold_s = self._settings.signal_hold_s
        mirror.held.hold(to, conn.id, payload, now=self._clock.now(), hold_s=hold_s)
        if mirror.is_present(to):
            self._tasks.spawn(self._deliver_held(mirror, to))

    async def _deliver_held(self, mirror: Mirror, participant_id: str) -> None:
        while mirror.is_present(participant_id):
            payload = mirror.held.next_for(participant_id, self._clock.now())
            if payload is None:
                return
            await self._bus.publish(user_channel(participant_id), payload)

    # --- joining and leaving ---------------------------------------------------------

    async def join(self, conn: Connection, msg: RoomJoin) -> _Entry:
        """Enter a room: answer `room.joined`, tell the others; an incoming interpreter's
        join completes a hand-over, a guest who had left comes back. Returns what the join
        recorded (the segments' endings are still to be announced)."""
        room_id = msg.room_id
        identity = conn.identity
        if identity.role == Role.GUEST and identity.room_id != room_id:
            raise NotInRoom()
        mirror = await self._open(room_id, room_channel(room_id), lambda: Mirror(room_id))
        try:
            async with self._db.write() as session:
                entry = await self._record_join(session, conn, room_id)
            rows = entry.rows
            self._set_members(mirror, rows, entry.incoming_call)
            mirror.local[conn.id] = conn
            self._joined.setdefault(conn.id, set()).add(room_id)
            for participant_id, socket_id in entry.present:
                self._add(mirror, participant_id, socket_id)
        finally:
            await self._release(room_id, mirror, pending=True)
        me = mirror.members[conn.user_id]
        participants = [
            consultation.participant_view(r, mirror.is_present(r.participant_id) or r is me)
            for r in rows
        ]
        conn.send(
            RoomJoined(
                room_id=room_id,
                self_id=conn.user_id,
                participants=participants,
                polite_to=[
                    r.participant_id
                    for r in rows
                    if r is not me and consultation.polite(me, r, mirror.incoming_call)
                ],
                ice_servers=ice_servers_for(self._settings, conn.user_id, self._clock.now()),
                ref=msg.ref,
            )
        )
        log.info("room_joined", room_id=room_id, role=str(me.role))
        await publish_json(
            self._bus,
            room_channel(room_id),
            {"type": "room.join", "participant_id": conn.user_id, "socket_id": conn.id},
        )
        return entry

    async def _record_join(self, session: AsyncSession, conn: Connection, room_id: str) -> _Entry:
        """In one transaction: the room must be open and the caller belong in it (a guest who
        had left comes back); the socket's presence is written; an incoming interpreter
        ends the outgoing segments."""
        room = await session.get(Room, room_id)
        if room is None:
            raise NotInRoom()
        row = await consultation.participant_of(session, room_id, conn.user_id)
        if room.state != RoomState.OPEN:
            ours = row is not None or conn.user_id == room.counsellor_id
            raise RoomEnded() if ours or conn.identity.room_id == room_id else NotInRoom()
        now = self._clock.now()
        came_back = row is None and conn.identity.role == Role.GUEST
        if came_back:
            row = await consultation.readmit_guest(session, room_id, conn.identity, now)
        if row is None:
            raise NotInRoom()
        if await session.get(RoomPresence, conn.id) is None:
            session.add(
                RoomPresence(
                    socket_id=conn.id,
                    room_id=room_id,
                    participant_id=conn.user_id,
                    instance_id=self._instance_id,
                    seen_at=now,
                )
            )
        row.seen_at = now
        row.joined_at = row.joined_at or now
        endings = await self._complete_handover(session, room, row, now)
        await session.flush()
        fresh_after = now - self.stale_after
        found = await session.exec(
            select(RoomPresence.participant_id, RoomPresence.socket_id)
            .where(col(RoomPresence.room_id) == room_id)
            .where(col(RoomPresence.seen_at) > fresh_after)
        )
        present = [(p, s) for p, s in found.all()]
        rows = await consultation.participants(session, room_id)
        return _Entry(rows, present, endings, room.call_id, came_back)

    async def _complete_handover(
        self, session: AsyncSession, room: Room, row: RoomParticipant, now: datetime
    ) -> list[Any]:
        """The incoming interpreter is in: the outgoing one's segment ends `handover`."""
        if row.role != ParticipantRole.INTERPRETER:
            return []
        if row.call_id is None or room.call_id != row.call_id:
            return []  # not the incoming one: the outgoing interpreter rejoined
        done = []
        for call in await consultation.live_segments(session, room.id):
            if call.id == row.call_id:
                continue
            ended = await consultation.end_segment(
                session,
                call,
                EndReason.HANDOVER,
                now=now,
                wrap_up_s=self._settings.wrap_up_s,
                hooks=self._ending.hooks,
            )
            if ended is not None:
                done.append(ended)
                log.info("room_handed_over", room_id=room.id, call_id=call.id, to=row.call_id)
        return await consultation.ending_views(session, done)

    async def leave_all(self, conn: Connection) -> None:
        """The socket closed: leave each room it was in (the participant may come back
        within the grace)."""
        rooms = self._joined.pop(conn.id, None)
        if not rooms:
            return
        for room_id in rooms:
            mirror = self._rooms.get(room_id)
            if mirror is not None:
                mirror.local.pop(conn.id, None)
                mirror.held.drop_sender(conn.id)
                self._remove(mirror, conn.user_id, conn.id)
            try:
                async with self._db.write() as session:
                    await session.exec(
                        delete(RoomPresence).where(col(RoomPresence.socket_id) == conn.id)
                    )
                    await session.exec(
                        update(RoomParticipant)
                        .where(col(RoomParticipant.room_id) == room_id)
                        .where(col(RoomParticipant.participant_id) == conn.user_id)
                        .where(col(RoomParticipant.left_at).is_(None))
                        .values(seen_at=self._clock.now())
                    )
                await publish_json(
                    self._bus,
                    room_channel(room_id),
                    {"type": "room.leave", "participant_id": conn.user_id, "socket_id": conn.id},
                )
            except Exception:
                log.exception("room_leave_failed", room_id=room_id)
            finally:
                if mirror is not None:
                    await self._release(room_id, mirror)

    # --- heartbeat ---------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Write this instance's participants' seen-times (and their segments' seen-times,
        which the call sweep reads), and correct the mirror from the database."""
        if not self._rooms:
            return
        now = self._clock.now()
        sockets = [s for m in self._rooms.values() for s in m.local]
        pairs = {(m.room_id, c.user_id) for m in self._rooms.values() for c in m.local.values()}
        counsellor_calls, interpreter_calls = self._segments_seen(pairs)
        async with self._db.write() as session:
            if sockets:
                await session.exec(
                    update(RoomPresence)
                    .where(col(RoomPresence.socket_id).in_(sockets))
                    .values(seen_at=now)
                )
            for room_id, participant_id in pairs:
                await session.exec(
                    update(RoomParticipant)
                    .where(col(RoomParticipant.room_id) == room_id)
                    .where(col(RoomParticipant.participant_id) == participant_id)
                    .where(col(RoomParticipant.left_at).is_(None))
                    .values(seen_at=now)
                )
            await lifecycle.record_seen(
                session,
                counsellor_calls=counsellor_calls,
                interpreter_calls=interpreter_calls,
                socket_ids=[],
                now=now,
            )

    def _segments_seen(self, pairs: set[tuple[str, str]]) -> tuple[list[str], list[str]]:
        """The segments whose counsellor, and whose interpreter, is in a room here."""
        counsellor_calls: list[str] = []
        interpreter_calls: list[str] = []
        for room_id, participant_id in pairs:
            mirror = self._rooms.get(room_id)
            if mirror is None:
                continue
            me = mirror.members.get(participant_id)
            if me is None:
                continue
            if me.role == ParticipantRole.INTERPRETER and me.call_id:
                interpreter_calls.append(me.call_id)
            elif me.role == ParticipantRole.COUNSELLOR:
                counsellor_calls.extend(
                    r.call_id for r in mirror.members.values() if r.call_id is not None
                )
        return counsellor_calls, interpreter_calls

    async def sweep(self, app: web.Application) -> None:
        """Participants gone longer than the rejoin grace are lost: an interpreter's segment
        ends `lost`, a counsellor's room ends `lost`, a guest leaves; an interpreter whose
        segment ended otherwise (never connected) leaves too. Runs on every instance."""
        now = self._clock.now()
        seen_before = now - timedelta(seconds=self._settings.call_rejoin_grace_s)
        async with self._db.read() as session:
            due = await _lost_participants(session, seen_before, now - self.stale_after)
        for room_id, participant_id in due:
            try:
                await leave_room(app, room_id, participant_id, lost_before=seen_before)
            except (NotInRoom, RoomEnded):
                pass  # another instance's sweep, or a rejoin, came first
            except Exception:
                log.exception("room_sweep_failed", room_id=room_id)

    async def close(self) -> None:
        """On shutdown: stop background work and leave the bus channels."""
        await self._tasks.cancel()
        await unsubscribe(mirror.subscription for mirror in self._rooms.values())
        self._rooms.clear()

    async def on_connect(self, conn: Connection) -> None:
        """A (re)connected socket learns its open room from the database."""
        async with self._db.read() as session:
            room = await _open_room_of(session, conn)
            view = await consultation.room_view(session, room) if room is not None else None
        if view is not None:
            conn.send(RoomUpdated(room=view))


async def _open_room_of(session: AsyncSession, conn: Connection) -> Room | None:
    """The open room a socket's owner belongs in, if any."""
    rows = await session.exec(
        select(Room)
        .join(RoomParticipant, col(RoomParticipant.room_id) == col(Room.id))
        .where(col(RoomParticipant.participant_id) == conn.user_id)
        .where(col(RoomParticipant.left_at).is_(None))
        .where(col(Room.state) == RoomState.OPEN.value)
    )
    return rows.first()


async def _lost_participants(
    session: AsyncSession, seen_before: datetime, fresh_after: datetime
) -> list[tuple[str, str]]:
    """(room, participant) of open rooms whose participant is due to be lost."""
    live = select(RoomPresence.participant_id).where(col(RoomPresence.seen_at) > fresh_after)
    gone = (
        select(
            RoomParticipant.room_id,
            RoomParticipant.participant_id,
            RoomParticipant.role,
            Call.state,
        )
        .join(Room, col(Room.id) == col(RoomParticipant.room_id))
        .outerjoin(Call, col(Call.id) == col(RoomParticipant.call_id))
        .where(col(Room.state) == RoomState.OPEN.value)
        .where(col(RoomParticipant.left_at).is_(None))
    )
    due = []
    present = set((await session.exec(live)).all())
    for room_id, participant_id, role, call_state in (await session.exec(gone)).all():
        segment_over = role == ParticipantRole.INTERPRETER and call_state == CallState.ENDED
        if segment_over:
            due.append((room_id, participant_id))
    lost = await session.exec(
        select(RoomParticipant.room_id, RoomParticipant.participant_id)
        .join(Room, col(Room.id) == col(RoomParticipant.room_id))
        .where(col(Room.state) == RoomState.OPEN.value)
        .where(col(RoomParticipant.left_at).is_(None))
        .where(col(RoomParticipant.joined_at).is_not(None))
        .where(col(RoomParticipant.seen_at) <= seen_before)
    )
    due.extend((r, p) for r, p in lost.all() if p not in present)
    return due


CONSULTATIONS = web.AppKey("consultations", Consultations)


# --- socket handlers ---------------------------------------------------------------------


async def _announce(app: web.Application, room_id: str, endings: Any = (), also: Any = ()) -> None:
    """After a change of the room committed: ended segments, then the room to everyone."""
    ending = app[CALL_ENDING]
    if endings:
        await consultation.announce_endings(ending.bus, ending.presence, endings)
    async with app[DATABASE].read() as session:
        room = await session.get(Room, room_id)
        view = await consultation.room_view(session, room) if room is not None else None
    if view is not None:
        await consultation.announce_room(ending.bus, view, also=also)


async def handle_room_join(app: web.Application, conn: Connection, msg: RoomJoin) -> None:
    """`room.join` -> `room.joined`."""
    entry = await app[CONSULTATIONS].join(conn, msg)
    if entry.endings or entry.came_back:
        await _announce(app, msg.room_id, entry.endings)


async def handle_room_signal(app: web.Application, conn: Connection, msg: Signal) -> None:
    """`signal` with `room_id`: relayed to participant `to`."""
    await app[CONSULTATIONS].relay(conn, msg)


async def handle_room_media(app: web.Application, conn: Connection, msg: RoomMedia) -> None:
    """`room.media`: this side's connection to one other participant; the connection
    between an interpreter and the counsellor, connected on both sides, starts the
    interpreter's segment (billing)."""
    rooms = app[CONSULTATIONS]
    if not rooms.joined(conn, msg.room_id):
        raise NotInRoom()
    async with app[DATABASE].write() as session:
        call_id = await _segment_between(session, msg.room_id, conn.user_id, msg.peer)
        if call_id is None:
            return
        call, changed = await lifecycle.report_media(
            session, call_id, conn.user_id, msg.state, app[CLOCK].now()
        )
        view = await load_call_view(session, call) if changed else None
    if view is not None:
        log.info("room_segment_connected", room_id=msg.room_id, call_id=call_id)
        await publish_call(app[BUS], view)
        await _announce(app, msg.room_id)


async def _segment_between(session: AsyncSession, room_id: str, one: str, other: str) -> str | None:
    """The live segment of the interpreter in this pair, when the other is the counsellor."""
    rows = {
        r.participant_id: r
        for r in await consultation.participants(session, room_id)
        if r.participant_id in (one, other)
    }
    roles = {r.role for r in rows.values()}
    if roles != {ParticipantRole.COUNSELLOR, ParticipantRole.INTERPRETER}:
        return None
    interpreter = next(r for r in rows.values() if r.role == ParticipantRole.INTERPRETER)
    call = await session.get(Call, interpreter.call_id) if interpreter.call_id else None
    return call.id if call is not None and call.state != CallState.ENDED else None


async def handle_room_leave(app: web.Application, conn: Connection, msg: RoomLeave) -> None:
    """`room.leave`: leave for good; the counsellor's ends the room."""
    if not app[CONSULTATIONS].joined(conn, msg.room_id):
        raise NotInRoom()
    view = await leave_room(app, msg.room_id, conn.user_id)
    conn.send(RoomUpdated(room=view, ref=msg.ref))


async def leave_room(
    app: web.Application, room_id: str, participant_id: str, lost_before: datetime | None = None
) -> Any:
    """A participant leaves for good: a guest or interpreter alone (the interpreter's segment
    ends `hangup`), the counsellor with the whole room. With `lost_before` the participant
    is lost instead, unless seen since (a rejoin saves them). Returns the room as it is."""
    ending = app[CALL_ENDING]
    settings = app[SETTINGS]
    now = app[CLOCK].now()
    async with app[DATABASE].write() as session:
        room = await session.get(Room, room_id)
        row = await consultation.participant_of(session, room_id, participant_id)
        if room is None or row is None:
            raise NotInRoom()
        lost = lost_before is not None
        if lost_before is not None and row.seen_at is not None and row.seen_at > lost_before:
            call = await session.get(Call, row.call_id) if row.call_id else None
            if call is None or call.state != CallState.ENDED:
                raise NotInRoom()
        everyone = await consultation.audience(session, room_id)
        if row.role == ParticipantRole.COUNSELLOR:
            done = await consultation.end_room(
                session,
                room,
                "lost" if lost else "hangup",
                now=now,
                wrap_up_s=settings.wrap_up_s,
                hooks=ending.hooks,
            )
        else:
            done = await consultation.leave(
                session,
                room,
                row,
                now=now,
                wrap_up_s=settings.wrap_up_s,
                hooks=ending.hooks,
                reason=EndReason.LOST if lost else EndReason.HANGUP,
            )
        endings = await consultation.ending_views(session, done or [])
        view = await consultation.room_view(session, room)
    await consultation.announce_endings(ending.bus, ending.presence, endings)
    await consultation.announce_room(ending.bus, view, also=everyone)
    return view


CONSULTATION_HANDLERS: dict[str, Any] = {
    "room.join": handle_room_join,
    "room.media": handle_room_media,
    "room.leave": handle_room_leave,
}


def install_consultations(app: web.Application, services: RoomServices) -> Consultations:
    """Make this instance's consultation rooms and hook them to the hub."""
    rooms = Consultations(services, ending=app[CALL_ENDING])
    app[CONSULTATIONS] = rooms
    return rooms
