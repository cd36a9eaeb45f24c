"""Tables of calls: the call between a counsellor and an interpreter, and who is in its
room across instances. A call knows its request only by id.

Every state change is a guarded UPDATE (`... WHERE state <> 'ended'`) checked by row count;
the partial unique index below makes a second live call of an interpreter impossible.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ColumnElement, Index, String, literal_column
from sqlmodel import Field, SQLModel, col

from infra.db import UTCDateTime
from infra.ids import new_id
from infra.indexes import partial_index
from wire.rooms import RoomRole as ParticipantRole
from wire.rooms import RoomState

__all__ = ["ParticipantRole", "RoomState"]


class CallState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ENDED = "ended"


class EndReason(StrEnum):
    HANGUP = "hangup"
    LOST = "lost"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"
    HANDOVER = "handover"
    """An interpreter's segment of a consultation room ended when the next one joined."""


class Call(SQLModel, table=True):
    """A video call between a counsellor and an interpreter."""

    __tablename__ = "call"
    __table_args__ = (
        partial_index("uq_call_live_interpreter", "interpreter_id", "state <> 'ended'"),
        Index("ix_call_state", "state"),
        Index("ix_call_connected_at", "connected_at"),
        Index("ix_call_created_at", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    request_id: str = Field(
        foreign_key="interpretation_request.id", max_length=32, sa_column_kwargs={"unique": True}
    )
    counsellor_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    interpreter_id: str = Field(foreign_key="interpreter.user_id", index=True, max_length=32)
    organization_id: str = Field(foreign_key="organization.id", max_length=32)
    language: str = Field(max_length=35)
    audio_only: bool = False
    state: CallState = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    connected_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    end_reason: str | None = Field(default=None, max_length=30)
    counsellor_media: str | None = Field(default=None, max_length=20)
    interpreter_media: str | None = Field(default=None, max_length=20)
    counsellor_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    interpreter_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    connect_deadline: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    room_id: str | None = Field(default=None, max_length=32, index=True)
    """The consultation room this call is an interpreter's segment of, if any."""
    site_id: str | None = Field(default=None, max_length=32, index=True)
    """Its request's site."""


# Written into the SQL rather than bound, as dispatch.models explains for PENDING_OFFER.
LIVE_CALL: ColumnElement[bool] = col(Call.state) != literal_column(f"'{CallState.ENDED}'")
"""`call.state <> 'ended'`, as the index of live calls is defined."""


class CallPresence(SQLModel, table=True):
    """A socket that has joined a call room on some instance, refreshed every heartbeat.

    The truth about who is in a call across instances: a row is added on `call.join` and
    removed when the socket closes; rows of a killed instance go stale and are swept.
    """

    __tablename__ = "call_presence"

    socket_id: str = Field(primary_key=True, max_length=32)
    call_id: str = Field(foreign_key="call.id", index=True, max_length=32, ondelete="CASCADE")
    user_id: str = Field(max_length=32)
    instance_id: str = Field(max_length=64)
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Room(SQLModel, table=True):
    """A consultation opened by a counsellor, which a guest and interpreters join."""

    __tablename__ = "consultation_room"
    __table_args__ = (
        partial_index("uq_room_open_counsellor", "counsellor_id", "state = 'open'"),
        Index("ix_room_state", "state"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    counsellor_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    organization_id: str = Field(foreign_key="organization.id", max_length=32)
    state: RoomState = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    end_reason: str | None = Field(default=None, max_length=30)
    request_id: str | None = Field(default=None, max_length=32)
    """The room's open (or last) interpreter request."""
    call_id: str | None = Field(default=None, max_length=32)
    """The current interpreter's segment."""
    site_id: str | None = Field(default=None, max_length=32, index=True)
    """The counsellor's site when they opened it."""


OPEN_ROOM: ColumnElement[bool] = col(Room.state) == literal_column(f"'{RoomState.OPEN}'")
"""`consultation_room.state = 'open'`, as the index of open rooms is defined."""


class RoomParticipant(SQLModel, table=True):
    """Someone who belongs in a room: its counsellor, its guest, an interpreter (one row per
    segment). `seen_at` is refreshed while a socket of theirs is in the room."""

    __tablename__ = "room_participant"
    __table_args__ = (Index("ix_room_participant_room", "room_id", "participant_id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    room_id: str = Field(foreign_key="consultation_room.id", max_length=32)
    participant_id: str = Field(max_length=32)
    """The user id; a guest's `g…` id."""
    role: ParticipantRole = Field(sa_column=Column(String(20), nullable=False))
    display_name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, max_length=35)
    call_id: str | None = Field(default=None, max_length=32)
    """An interpreter's segment."""
    added_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    joined_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    left_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class RoomPresence(SQLModel, table=True):
    """A socket that has joined a consultation room on some instance (as `call_presence`)."""

    __tablename__ = "room_presence"

    socket_id: str = Field(primary_key=True, max_length=32)
    room_id: str = Field(
        foreign_key="consultation_room.id", index=True, max_length=32, ondelete="CASCADE"
    )
    participant_id: str = Field(max_length=32)
    instance_id: str = Field(max_length=64)
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Invitation(SQLModel, table=True):
    """A single-use link for a room's guest; only the SHA-256 of its token is stored."""

    __tablename__ = "room_invitation"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    room_id: str = Field(foreign_key="consultation_room.id", index=True, max_length=32)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
