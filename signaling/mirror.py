"""What the call rooms (signaling/rooms.py) and the consultation rooms
(signaling/consultations.py) share in mirroring a room on this instance: the mirrors
themselves and their bus channels, when a presence row counts as gone, the signals held
for a participant who is away, and the background tasks the instance owns."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from infra import jsonio
from infra.bus import Bus, Subscription
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from infra.tasks import Tasks

MAX_HELD_PER_PEER = 256
"""A peer that stays away cannot make a sender fill our memory: older signals go first."""
STALE_HEARTBEATS = 3
"""A presence row not refreshed for this many heartbeats belongs to a dead instance."""


@dataclass(slots=True)
class _Held:
    sender: str
    """The sending socket."""
    expires: datetime
    payload: bytes


class HeldSignals:
    """Per recipient, the signals waiting (in order) until they are present, each for at
    most the hold time."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[str, deque[_Held]] = {}

    def waiting(self, recipient: str) -> bool:
        """Whether signals wait for the recipient (a new one must queue behind them)."""
        return bool(self._queues.get(recipient))

    def hold(
        self, recipient: str, sender: str, payload: bytes, *, now: datetime, hold_s: float
    ) -> None:
        """Keep a signal for the recipient, dropping expired ones and the oldest when full."""
        queue = self._queues.setdefault(recipient, deque())
        while queue and queue[0].expires <= now:
            queue.popleft()
        if len(queue) >= MAX_HELD_PER_PEER:
            queue.popleft()
        queue.append(_Held(sender, now + timedelta(seconds=hold_s), payload))

    def next_for(self, recipient: str, now: datetime) -> bytes | None:
        """The recipient's oldest signal that has not expired, taken off the queue."""
        queue = self._queues.get(recipient)
        while queue:
            item = queue.popleft()
            if item.expires > now:
                return item.payload
        return None

    def drop_sender(self, sender: str) -> None:
        """A sender that left takes its signals with it: its peer connection is gone."""
        for queue in self._queues.values():
            kept = [h for h in queue if h.sender != sender]
            queue.clear()
            queue.extend(kept)

    def drop(self, recipient: str) -> None:
        """The recipient left for good."""
        self._queues.pop(recipient, None)

    def clear(self) -> None:
        """The room ended."""
        self._queues.clear()


async def unsubscribe(subscriptions: Iterable[Subscription | None]) -> None:
    """On shutdown: leave the rooms' bus channels, whatever each one's failure."""
    for subscription in list(subscriptions):
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.cancel()


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomServices:
    """What this instance's rooms work with, built once where the app is wired."""

    bus: Bus
    db: Database
    clock: Clock
    settings: Settings
    instance_id: str
    """Names this instance on the presence rows its sockets hold."""


class Mirrored(Protocol):
    """A room as this instance mirrors it."""

    local: dict[str, Any]
    """The sockets here in the room, by socket id."""
    pending: int
    """Joins on their way in."""
    closed: bool
    subscription: Subscription | None


R = TypeVar("R", bound=Mirrored)


class Mirrors(Generic[R]):
    """This instance's rooms of one kind, by id: a room is mirrored, and its bus channel
    heard, from the first join on its way in until the last socket here left it."""

    def __init__(self, services: RoomServices) -> None:
        # Kept apart so that the rooms' code reads `self._db`, not `self._services.db`.
        self._bus = services.bus
        self._db = services.db
        self._clock = services.clock
        self._settings = services.settings
        self._instance_id = services.instance_id
        self._rooms: dict[str, R] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks = Tasks()

    def _on_news(self, channel: str, payload: bytes) -> None:
        room = self._rooms.get(channel.partition(":")[2])
        if room is not None:
            self._hear(room, jsonio.loads(payload))

    def _hear(self, room: R, news: dict[str, Any]) -> None:
        """What the room's bus channel told: joins, leaves, changes."""
        raise NotImplementedError

    async def _open(self, room_id: str, channel: str, new: Callable[[], R]) -> R:
        """The room's mirror (`new()` and heard on `channel` if there is none yet), with
        one more join on its way in: release it with `pending` once the join is through."""
        async with self._locks.setdefault(room_id, asyncio.Lock()):
            room = self._rooms.get(room_id)
            if room is None:
                room = new()
                # Subscribe before reading who is present: a join committed after our
                # read is then announced to us, and one committed before is in the read.
                room.subscription = await self._bus.subscribe(channel, self._on_news)
                self._rooms[room_id] = room
            room.pending += 1
            return room

    async def _release(self, room_id: str, room: R, *, pending: bool = False) -> None:
        """A join is through (`pending`) or a socket here left: with no socket here and no
        join on its way, the mirror is closed and its channel no longer heard."""
        async with self._locks.setdefault(room_id, asyncio.Lock()):
            if pending:
                room.pending -= 1
            if room.local or room.pending:
                return
            if self._rooms.get(room_id) is room:
                del self._rooms[room_id]
            room.closed = True
            sub, room.subscription = room.subscription, None
            if sub is not None:
                await sub.cancel()
        if room_id not in self._rooms:
            self._locks.pop(room_id, None)
