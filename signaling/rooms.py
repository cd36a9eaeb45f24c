"""Call rooms: `call.join`, the `signal` relay, `peer` presence, `call.media` and
`call.hangup` on the socket.

Who is in a room, across instances, is recorded in the database (`call_presence` rows,
refreshed every heartbeat) and mirrored in memory on every instance that holds a socket
in the room: the instance subscribes to the room's bus channel, where joins, leaves and
call updates are announced. The relay reads only that mirror, so a `signal` costs one
parse, a membership check against `conn.calls`, and one publish on the peer's user
channel; no database round trip. While the peer is absent, signals are held here (for
`signal_hold_s`) and published when its join is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from calls import lifecycle
from calls.announce import publish_call
from calls.ending import CALL_ENDING
from calls.lifecycle import CallEnded
from calls.models import Call, CallPresence, CallState
from calls.views import load_call_view
from infra import jsonio
from infra.appkeys import BUS, CLOCK, DATABASE
from infra.bus import Subscription, publish_json, user_channel
from infra.metrics import METRICS, Metrics
from infra.outages import Unavailable
from signaling.consultations import handle_room_signal
from signaling.hub import Connection
from signaling.ice import ice_servers_for
from signaling.mirror import STALE_HEARTBEATS, HeldSignals, Mirrors, RoomServices, unsubscribe
from wire.client import CallHangup, CallJoin, CallMedia, Signal
from wire.server import (
    CallJoined,
    CallUpdated,
    ErrorMessage,
    PeerPresence,
    relayed_signal,
)

log = structlog.get_logger(__name__)


class Room:
    """One call's room as this instance sees it."""

    __slots__ = (
        "call_id",
        "closed",
        "flushing",
        "gone",
        "held",
        "local",
        "pending",
        "present",
        "subscription",
        "users",
    )

    def __init__(self, call: Call) -> None:
        self.call_id = call.id
        self.users = (call.counsellor_id, call.interpreter_id)
        self.local: dict[str, Connection] = {}
        """Sockets on this instance that joined, by socket id."""
        self.present: dict[str, dict[str, float]] = {u: {} for u in self.users}
        """Per participant, the sockets (any instance) in the room, with when we learnt it."""
        self.gone: set[str] = set()
        """Sockets whose leave we saw, so that a late snapshot cannot bring them back."""
        self.held = HeldSignals()
        self.flushing: set[str] = set()
        self.pending = 0
        self.closed = False
        self.subscription: Subscription | None = None

    def peer_of(self, user_id: str) -> str:
        """The other participant."""
        return self.users[1] if user_id == self.users[0] else self.users[0]

    def side_of(self, user_id: str) -> lifecycle.Side:
        """Which participant the user is."""
        return "counsellor" if user_id == self.users[0] else "interpreter"

    def is_present(self, user_id: str) -> bool:
        """Whether the participant has a socket in the room on any instance."""
        return bool(self.present.get(user_id))


class Rooms(Mirrors[Room]):
    """This instance's call rooms."""

    def __init__(self, services: RoomServices) -> None:
        super().__init__(services)
        self._leaving: set[asyncio.Task[None]] = set()
        self._closed = False
        self._writes = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.hand_over: Callable[[str, bytes], None] | None = None
        """On the in-process bus, what hands a signal relayed on the fast path
        (`relay_now`) to its recipient's sockets here (`Hub.hand_over`): what the bus's
        fan-out to the user's channel would do, without its lookups and calls per signal."""

    @property
    def stale_after_s(self) -> float:
        """How old a presence row may be before it counts as gone."""
        return STALE_HEARTBEATS * self._settings.ws_heartbeat_s

    # --- lifetime of a room on this instance -----------------------------------------

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[bool]:
        """Count a database write in flight; yields False once the rooms are closed."""
        if self._closed:
            yield False
            return
        self._writes += 1
        self._idle.clear()
        try:
            yield True
        finally:
            self._writes -= 1
            if not self._writes:
                self._idle.set()

    async def close(self) -> None:
        """On shutdown: leave every room here at once, then stop background work."""
        if self._leaving:
            await asyncio.wait(self._leaving, timeout=5)
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):  # not wait_for: it can swallow a cancellation on 3.11
                await self._idle.wait()
        sockets = [conn for room in self._rooms.values() for conn in room.local.values()]
        if sockets:
            now = self._clock.now()
            try:
                async with self._db.write() as session:
                    for conn in sockets:
                        for call_id in conn.calls:
                            await _record_leave(session, self._rooms[call_id], conn, now)
            except Exception:
                log.exception("call_leave_on_shutdown_failed")
        await self._tasks.cancel()
        await unsubscribe(room.subscription for room in self._rooms.values())
        self._rooms.clear()

    # --- presence mirror -------------------------------------------------------------

    def _hear(self, room: Room, news: dict[str, Any]) -> None:
        kind = news.get("type")
        if kind == "room.join":
            self._add(room, news["user_id"], news["socket_id"])
        elif kind == "room.leave":
            self._remove(room, news["user_id"], news["socket_id"])
        elif kind == "call.updated" and news["call"]["state"] == CallState.ENDED:
            self._ended(room)

    def _add(self, room: Room, user_id: str, socket_id: str) -> None:
        sockets = room.present.get(user_id)
        if sockets is None or socket_id in room.gone or socket_id in sockets:
            return
        was_present = bool(sockets)
        sockets[socket_id] = asyncio.get_running_loop().time()
        if not was_present:
            self._peer_changed(room, user_id, present=True)

    def _remove(self, room: Room, user_id: str, socket_id: str, *, final: bool = True) -> None:
        if final:
            room.gone.add(socket_id)
        sockets = room.present.get(user_id)
        if sockets is None or sockets.pop(socket_id, None) is None:
            return
        if not sockets:
            self._peer_changed(room, user_id, present=False)

    def _peer_changed(self, room: Room, user_id: str, *, present: bool) -> None:
        event = jsonio.dumps(PeerPresence(call_id=room.call_id, present=present))
        for conn in room.local.values():
            if conn.user_id != user_id:
                conn.send_raw(event)
        if present and room.held.waiting(user_id):
            self._flush(room, user_id)

    def _ended(self, room: Room) -> None:
        for conn in room.local.values():
            conn.left(room.call_id)
        room.local.clear()
        room.held.clear()
        self._tasks.spawn(self._release(room.call_id, room))

    # --- the relay -------------------------------------------------------------------

    async def relay(self, conn: Connection, call_id: str, data: dict[str, Any]) -> None:
        """Pass a signal to the other participant, or hold it while they are away."""
        room, peer = self._addressed(conn, call_id)
        payload = relayed_signal(call_id, conn.user_id, data)
        if self._held_for(conn, room, peer, payload):
            return
        await self._bus.publish(user_channel(peer), payload)

    def relay_now(
        self, conn: Connection, call_id: str, data: dict[str, Any]
    ) -> Awaitable[None] | None:
        """`relay` on the socket's fast path: handed to the peer's sockets at once on one
        instance (`hand_over`); else what is left to await."""
        room, peer = self._addressed(conn, call_id)
        payload = relayed_signal(call_id, conn.user_id, data)
        if self._held_for(conn, room, peer, payload):
            return None
        if (hand_over := self.hand_over) is not None:
            hand_over(peer, payload)
            return None
        return self._bus.publish(user_channel(peer), payload)

    def _addressed(self, conn: Connection, call_id: str) -> tuple[Room, str]:
        """The room a signal goes through, and who it is for."""
        room = self._rooms.get(call_id)
        if room is None:  # the call ended between the membership check and here
            raise CallEnded()
        return room, room.peer_of(conn.user_id)

    def _held_for(self, conn: Connection, room: Room, peer: str, payload: bytes) -> bool:
        """Hold a signal while its recipient is away or signals wait for them already (it
        waits its turn behind those); False when it may go now."""
        if not room.held.waiting(peer) and room.present[peer]:
            return False
        hold_s = self._settings.signal_hold_s
        room.held.hold(peer, conn.id, payload, now=self._clock.now(), hold_s=hold_s)
        if room.present[peer]:
            self._flush(room, peer)
        return True

    def _flush(self, room: Room, user_id: str) -> None:
        if user_id not in room.flushing:
            room.flushing.add(user_id)
            self._tasks.spawn(self._deliver_held(room, user_id))

    async def _deliver_held(self, room: Room, user_id: str) -> None:
        channel = user_channel(user_id)
        try:
            while room.present[user_id]:
                payload = room.held.next_for(user_id, self._clock.now())
                if payload is None:
                    break
                await self._bus.publish(channel, payload)
        finally:
            room.flushing.discard(user_id)

    # --- joining and leaving ---------------------------------------------------------

    async def join(self, conn: Connection, msg: CallJoin) -> None:
        """Enter a call's room: answer `call.joined`, announce the join to the peer."""
        call_id = msg.call_id
        room = self._rooms.get(call_id)
        if call_id in conn.calls and room is not None:
            self._send_joined(conn, room, msg.ref)
            return
        async with self._db.read() as session:
            call = await lifecycle.joinable_call(session, call_id, conn.user_id)
        room = await self._open(call_id, lifecycle.call_channel(call_id), lambda: Room(call))
        try:
            now = self._clock.now()
            async with self._db.write() as session:
                call, rows = await lifecycle.join_call(
                    session,
                    call_id,
                    conn.user_id,
                    socket_id=conn.id,
                    instance_id=self._instance_id,
                    now=now,
                    fresh_after=now - timedelta(seconds=self.stale_after_s),
                )
            if room.closed:
                raise CallEnded()
            room.local[conn.id] = conn
            conn.joined(call_id)
            self._merge(room, rows)
        finally:
            await self._release(call_id, room, pending=True)
        log.info("call_joined", call_id=call_id)
        self._send_joined(conn, room, msg.ref)
        await publish_json(
            self._bus,
            lifecycle.call_channel(call_id),
            {"type": "room.join", "user_id": conn.user_id, "socket_id": conn.id},
        )

    def _send_joined(self, conn: Connection, room: Room, ref: str | None) -> None:
        user_id = conn.user_id
        conn.send(
            CallJoined(
                call_id=room.call_id,
                polite=user_id == room.users[1],
                peer_present=room.is_present(room.peer_of(user_id)),
                ice_servers=ice_servers_for(self._settings, user_id, self._clock.now()),
                ref=ref,
            )
        )

    def _merge(self, room: Room, rows: list[CallPresence]) -> None:
        for row in rows:
            self._add(room, row.user_id, row.socket_id)

    async def leave_all(self, conn: Connection) -> None:
        """The socket closed: leave each room it was in (hook of the hub)."""
        if not conn.calls:
            return
        # aiohttp cancels a socket's handler when the client goes away; the leave must
        # still be written, so it runs in a task of its own that the handler only awaits.
        task = asyncio.get_running_loop().create_task(self._leave(conn, list(conn.calls)))
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)
        await asyncio.shield(task)

    async def _leave(self, conn: Connection, call_ids: list[str]) -> None:
        for call_id in call_ids:
            conn.left(call_id)
            room = self._rooms.get(call_id)
            if room is None:
                continue
            room.local.pop(conn.id, None)
            room.held.drop_sender(conn.id)
            self._remove(room, conn.user_id, conn.id)
            try:
                async with self._writing() as open_, contextlib.AsyncExitStack() as stack:
                    if not open_:
                        continue  # shutting down: close() has recorded the leave
                    session = await stack.enter_async_context(self._db.write())
                    await _record_leave(session, room, conn, self._clock.now())
                await publish_json(
                    self._bus,
                    lifecycle.call_channel(call_id),
                    {"type": "room.leave", "user_id": conn.user_id, "socket_id": conn.id},
                )
            except Unavailable:
                # Its presence row goes stale and is purged once the database is back.
                log.info("call_leave_not_recorded", call_id=call_id)
            except Exception:
                log.exception("call_leave_failed", call_id=call_id)
            finally:
                await self._release(call_id, room)
            log.info("call_left", call_id=call_id)

    # --- heartbeat ---------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Write this instance's participants' seen-times, and correct the presence mirror
        from the database (a peer on an instance that died leaves no `room.leave`)."""
        async with self._writing() as open_:
            if open_ and self._rooms:
                await self._heartbeat()

    async def _heartbeat(self) -> None:
        now = self._clock.now()
        counsellor_calls: list[str] = []
        interpreter_calls: list[str] = []
        sockets: list[str] = []
        for room in self._rooms.values():
            users = {conn.user_id for conn in room.local.values()}
            sockets.extend(room.local)
            if room.users[0] in users:
                counsellor_calls.append(room.call_id)
            if room.users[1] in users:
                interpreter_calls.append(room.call_id)
        async with self._db.write() as session:
            await lifecycle.record_seen(
                session,
                counsellor_calls=counsellor_calls,
                interpreter_calls=interpreter_calls,
                socket_ids=sockets,
                now=now,
            )
        started = asyncio.get_running_loop().time()
        async with self._db.read() as session:
            rows = await lifecycle.live_presence(
                session, list(self._rooms), now - timedelta(seconds=self.stale_after_s)
            )
        fresh: dict[str, dict[str, str]] = {}
        for row in rows:
            fresh.setdefault(row.call_id, {})[row.socket_id] = row.user_id
        for call_id, room in list(self._rooms.items()):
            live = fresh.get(call_id, {})
            for user_id, present in room.present.items():
                for socket_id, learnt in list(present.items()):
                    if socket_id not in room.local and socket_id not in live and learnt < started:
                        self._remove(room, user_id, socket_id, final=False)
            for socket_id, user_id in live.items():
                self._add(room, user_id, socket_id)

    def refresh_soon(self) -> None:
        """After a gap in the bus: re-read who is in each room here now, since joins and
        leaves announced during the gap may be lost (the heartbeat would, later)."""
        if self._rooms:
            self._tasks.spawn(self._refresh())

    async def _refresh(self) -> None:
        try:
            await self.heartbeat()
        except Unavailable:
            pass
        except Exception:
            log.exception("room_refresh_failed")

    async def on_connect(self, conn: Connection) -> None:
        """A (re)connected socket learns its live calls from the database."""
        async with self._db.read() as session:
            live = await lifecycle.live_calls_of(session, conn.user_id)
            views = [await load_call_view(session, call) for call in live]
        for view in views:
            conn.send(CallUpdated(call=view))


async def _record_leave(session: AsyncSession, room: Room, conn: Connection, now: datetime) -> None:
    """The socket's leave of the call, in the database."""
    side = room.side_of(conn.user_id)
    await lifecycle.leave_call(
        session, room.call_id, conn.user_id, socket_id=conn.id, side=side, now=now
    )


ROOMS = web.AppKey("rooms", Rooms)


# --- socket handlers ---------------------------------------------------------------------


async def handle_join(app: web.Application, conn: Connection, msg: CallJoin) -> None:
    """`call.join` -> `call.joined`."""
    await app[ROOMS].join(conn, msg)


async def handle_signal(app: web.Application, conn: Connection, msg: Signal) -> None:
    """`signal`: relayed to the other participant; only members of the room may send."""
    if msg.call_id is None:
        await handle_room_signal(app, conn, msg)
        return
    await relay_signal(app, conn, msg.call_id, msg.data, msg.ref)


async def relay_signal(
    app: web.Application, conn: Connection, call_id: str, data: dict[str, Any], ref: str | None
) -> None:
    """A validated `signal`'s fields: checked against the rooms this socket joined, then
    relayed (the socket's fast path calls this without building a `Signal`)."""
    if not _may_signal(app[METRICS], conn, call_id, ref):
        return
    await app[ROOMS].relay(conn, call_id, data)
    app[METRICS].relay_messages.inc("relayed")


class FastRelay:
    """`relay_signal` on the socket's fast path (`Rooms.relay_now`), with the instance's
    rooms and metrics looked up once rather than per signal (signaling/socket.py)."""

    __slots__ = ("_metrics", "_rooms", "relayed")

    def __init__(self, rooms: Rooms, metrics: Metrics) -> None:
        self._rooms = rooms
        self._metrics = metrics
        self.relayed = 0
        """Signals relayed here: each is one `signal` socket message and one relayed
        signal, added to those counters when /metrics is scraped (one integer per signal
        rather than two counts)."""
        metrics.socket_messages.add_reading("signal", self._relayed)
        metrics.relay_messages.add_reading("relayed", self._relayed)

    def _relayed(self) -> int:
        return self.relayed

    def signal(
        self, conn: Connection, call_id: str, data: dict[str, Any], ref: str | None
    ) -> Awaitable[None] | None:
        """Count a plain `signal` and relay it: None when done, else what is left to await."""
        if call_id not in conn.calls:
            metrics = self._metrics
            metrics.socket_messages.inc("signal")
            _may_signal(metrics, conn, call_id, ref)  # refused: not a participant
            return None
        try:
            step = self._rooms.relay_now(conn, call_id, data)
        except BaseException:
            self._metrics.socket_messages.inc("signal")  # a message, though not relayed
            raise
        self.relayed += 1
        return step


FAST_RELAY = web.AppKey("fast_relay", FastRelay)


def _may_signal(metrics: Metrics, conn: Connection, call_id: str, ref: str | None) -> bool:
    """Whether this socket joined the call; if not, the signal is answered `forbidden`."""
    if call_id in conn.calls:
        return True
    metrics.relay_messages.inc("refused")
    message = "Only the call's participants may signal, after call.join."
    conn.send(ErrorMessage(code="forbidden", message=message, ref=ref))
    return False


async def handle_media(app: web.Application, conn: Connection, msg: CallMedia) -> None:
    """`call.media`: record one side's connection state; both connected starts billing."""
    async with app[DATABASE].write() as session:
        call, changed = await lifecycle.report_media(
            session, msg.call_id, conn.user_id, msg.state, app[CLOCK].now()
        )
        view = await load_call_view(session, call) if changed else None
    if view is not None:
        log.info("call_connected", call_id=call.id)
        if call.connected_at is not None:
            setup = (call.connected_at - call.created_at).total_seconds()
            app[METRICS].call_setup.observe(max(setup, 0.0))
        await publish_call(app[BUS], view)


async def handle_hangup(app: web.Application, conn: Connection, msg: CallHangup) -> None:
    """`call.hangup`: as the HTTP hangup; an ended call is answered as it is."""
    view, ended_now = await app[CALL_ENDING].hang_up(msg.call_id, conn.user_id)
    if not ended_now:
        conn.send(CallUpdated(call=view, ref=msg.ref))


ROOM_HANDLERS: dict[str, Any] = {
    "call.join": handle_join,
    "signal": handle_signal,
    "call.media": handle_media,
    "call.hangup": handle_hangup,
}
