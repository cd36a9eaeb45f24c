"""Consultation rooms on the socket: `room.join`, `signal` with `to`, `room.media` and
`room.leave`. Only a room's participants may send any of them about it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from signaling.hub import Connection
from wire.client import RoomJoin, RoomLeave, RoomMedia, Signal
from wire.server import ErrorMessage


def _not_a_participant(conn: Connection, ref: str | None) -> None:
    message = "Only the room's participants may do this, after room.join."
    conn.send(ErrorMessage(code="forbidden", message=message, ref=ref))


async def handle_room_join(app: web.Application, conn: Connection, msg: RoomJoin) -> None:
    """`room.join` -> `room.joined`."""
    _not_a_participant(conn, msg.ref)


async def handle_room_signal(app: web.Application, conn: Connection, msg: Signal) -> None:
    """`signal` with `room_id`: relayed to participant `to`."""
    _not_a_participant(conn, msg.ref)


async def handle_room_media(app: web.Application, conn: Connection, msg: RoomMedia) -> None:
    """`room.media`: this side's connection to one other participant."""
    _not_a_participant(conn, msg.ref)


async def handle_room_leave(app: web.Application, conn: Connection, msg: RoomLeave) -> None:
    """`room.leave`: leave for good (the counsellor's ends the room)."""
    _not_a_participant(conn, msg.ref)


CONSULTATION_HANDLERS: dict[str, Any] = {
    "room.join": handle_room_join,
    "room.media": handle_room_media,
    "room.leave": handle_room_leave,
}
