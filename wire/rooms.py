"""Consultation rooms on the wire: the `room` and `participant` objects and the guest a
socket may belong to (the room messages are in `wire.client` and `wire.server`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel


class RoomRole(StrEnum):
    """What a participant is in a room; also the order of politeness (later is polite)."""

    COUNSELLOR = "counsellor"
    GUEST = "guest"
    INTERPRETER = "interpreter"


class RoomState(StrEnum):
    """A room is open until its counsellor hangs up (or is lost)."""

    OPEN = "open"
    ENDED = "ended"


class GuestView(BaseModel):
    """The client invited by link, as `hello.user` and `GET /api/guest/me` show them."""

    id: str
    role: Literal["guest"] = "guest"
    display_name: str
    room_id: str
    language: str | None = None


class RoomCounsellorView(BaseModel):
    """The room's owner."""

    id: str
    display_name: str


class ParticipantView(BaseModel):
    """Someone who belongs in a room, present or not."""

    id: str
    """The user's id; a guest's opaque `g…` id."""
    role: RoomRole
    display_name: str | None
    """Null for an interpreter when the centre shows numbers instead of names."""
    language: str | None = None
    """A guest's language; an interpreter's call language."""
    number: int | None = None
    """An interpreter's number."""
    present: bool
    """Whether they have a socket in the room now."""
    call_id: str | None = None
    """An interpreter's segment (call)."""


class RoomView(BaseModel):
    """A consultation room."""

    id: str
    state: RoomState
    counsellor: RoomCounsellorView
    participants: list[ParticipantView]
    request_id: str | None = None
    """The room's open (or last) interpreter request."""
    call_id: str | None = None
    """The current interpreter's segment."""
    created_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
