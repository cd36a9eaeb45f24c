"""Messages clients send on the socket, parsed once at the edge into a tagged union."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from wire import ByType, message_types


class ClientMessage(BaseModel):
    """Fields every client message may carry."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ref: str | None = Field(default=None, max_length=100)


class Ping(ClientMessage):
    """An application-level ping; the server answers `pong` (handy behind proxies)."""

    type: Literal["ping"]


CallId = Annotated[str, Field(min_length=1, max_length=64)]
RoomId = Annotated[str, Field(min_length=1, max_length=64)]
ParticipantId = Annotated[str, Field(min_length=1, max_length=64)]
MAX_SDP_CHARS = 48 * 1024
"""An SDP of a call with audio, video and many candidates stays far below this."""
_DESCRIPTION_TYPES = frozenset({"offer", "answer", "pranswer", "rollback"})
_DESCRIPTION_FIELDS = frozenset({"type", "sdp"})
_CANDIDATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "candidate": str,
    "sdpMid": (str, type(None)),
    "sdpMLineIndex": (int, type(None)),
    "usernameFragment": (str, type(None)),
}


_SESSION_TAGS = ("session", "to_session")
"""Optional tags naming the sender's peer connection and the recipient's it answers, so that
a reloaded page can tell signals meant for its predecessor (docs/protocol.md `signal`)."""
MAX_SESSION_CHARS = 64
MAX_CANDIDATE_CHARS = 1024
"""The longest text a candidate's field may hold."""


def check_signal_data(data: dict[str, Any]) -> dict[str, Any]:
    """Accept `{"description": {type, sdp}}` or `{"candidate": {...} | null}`, each with
    optional session tags, bounded in size; the dict itself is relayed unchanged."""
    tags = 0
    for tag in _SESSION_TAGS:
        if tag in data:
            value = data[tag]
            if not isinstance(value, str) or not 0 < len(value) <= MAX_SESSION_CHARS:
                raise ValueError(f"{tag} is a string of 1 to {MAX_SESSION_CHARS} characters")
            tags += 1
    if len(data) - tags != 1:
        raise ValueError("data holds exactly one of description or candidate")
    if "description" in data:
        description = data["description"]
        if not isinstance(description, dict) or not description.keys() <= _DESCRIPTION_FIELDS:
            raise ValueError("description is {type, sdp}")
        kind = description.get("type")
        if not isinstance(kind, str) or kind not in _DESCRIPTION_TYPES:
            raise ValueError("description.type is offer, answer, pranswer or rollback")
        sdp = description.get("sdp", "")
        if not isinstance(sdp, str) or len(sdp) > MAX_SDP_CHARS:
            raise ValueError(f"description.sdp is a string of at most {MAX_SDP_CHARS} characters")
        return data
    if "candidate" in data:
        candidate = data["candidate"]
        if candidate is None:
            return data  # end of candidates
        if not isinstance(candidate, dict) or not candidate.keys() <= _CANDIDATE_FIELDS.keys():
            raise ValueError("candidate is {candidate, sdpMid, sdpMLineIndex, usernameFragment}")
        for name, value in candidate.items():
            if not isinstance(value, _CANDIDATE_FIELDS[name]) or isinstance(value, bool):
                raise ValueError(f"candidate.{name} has the wrong type")
            if isinstance(value, str) and len(value) > MAX_CANDIDATE_CHARS:
                raise ValueError(f"candidate.{name} is too long")
        return data
    raise ValueError("data holds a description or a candidate")


class CallJoin(ClientMessage):
    """Enter a call's room (again after a reconnect)."""

    type: Literal["call.join"]
    call_id: CallId


class Signal(ClientMessage):
    """A WebRTC description or ICE candidate for the other participant of a call, or for
    participant `to` of a consultation room."""

    type: Literal["signal"]
    call_id: CallId | None = None
    room_id: RoomId | None = None
    to: ParticipantId | None = None
    data: dict[str, Any]

    _check_data = field_validator("data")(check_signal_data)

    @model_validator(mode="after")
    def _one_destination(self) -> Signal:
        if (self.call_id is None) == (self.room_id is None):
            raise ValueError("a signal names either call_id or room_id")
        if self.room_id is not None and self.to is None:
            raise ValueError("a signal in a room names its recipient in to")
        return self


class CallMedia(ClientMessage):
    """One side's RTCPeerConnection state."""

    type: Literal["call.media"]
    call_id: CallId
    state: Literal["connected", "disconnected", "failed"]


class CallHangup(ClientMessage):
    """End the call (as POST /api/calls/{id}/hangup)."""

    type: Literal["call.hangup"]
    call_id: CallId


class RoomJoin(ClientMessage):
    """Enter a consultation room (again after a reconnect)."""

    type: Literal["room.join"]
    room_id: RoomId


class RoomMedia(ClientMessage):
    """The state of this side's RTCPeerConnection to one other participant of a room."""

    type: Literal["room.media"]
    room_id: RoomId
    peer: ParticipantId
    state: Literal["connected", "disconnected", "failed"]


class RoomLeave(ClientMessage):
    """Leave a room for good; the counsellor's leave ends the room."""

    type: Literal["room.leave"]
    room_id: RoomId


class PresenceMessage(ClientMessage):
    """`{"type": "presence", "status"}`: same as PUT /api/interpreters/me/status."""

    type: Literal["presence"]
    status: Literal["available", "away", "offline"]


class LanguagesWatch(ClientMessage):
    """Whether this socket wants the live language figures (`languages.updated`)."""

    type: Literal["languages.watch"]
    watch: bool


AnyClientMessage = ByType[
    Ping
    | PresenceMessage
    | LanguagesWatch
    | CallJoin
    | Signal
    | CallMedia
    | CallHangup
    | RoomJoin
    | RoomMedia
    | RoomLeave
]

CLIENT_MESSAGE: TypeAdapter[AnyClientMessage] = TypeAdapter(AnyClientMessage)
CLIENT_MESSAGE_TYPES: frozenset[str] = message_types(AnyClientMessage)
