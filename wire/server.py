"""Messages the server sends on the socket, one model per `type`.

Each model is the one place its message is shaped: the hubs, dispatch and the roster build
these and nothing else. A field that is `Omittable` is left out when None; every other
field is always sent (null where its type allows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from accounts.views import UserView
from wire import ByType, message_types
from wire.objects import (
    BookingView,
    CallView,
    IceServer,
    LanguageFigures,
    OfferView,
    Omittable,
    Presence,
    RequestView,
)
from wire.rooms import GuestView, ParticipantView, RoomView


def _always_sent(schema: dict[str, Any], model: type[BaseModel]) -> None:
    # Its schema is what clients read: every field is there but those left out when None.
    fields = model.model_fields.items()
    schema["required"] = [f.alias or name for name, f in fields if f.exclude_if is None]


class ServerMessage(BaseModel):
    """Fields every server message has."""

    model_config = ConfigDict(
        frozen=True,
        serialize_by_alias=True,
        validate_by_name=True,
        json_schema_extra=_always_sent,
    )

    type: str


class Hello(ServerMessage):
    """The first message on every socket."""

    type: Literal["hello"] = "hello"
    user: UserView | GuestView
    heartbeat_s: int
    server_time: datetime


class Pong(ServerMessage):
    """The answer to `ping`."""

    type: Literal["pong"] = "pong"
    ref: Omittable[str] = None


class FieldProblem(BaseModel):
    """One bad field of an invalid message."""

    field: str
    problem: str
    code: Omittable[str] = None
    """The problem's code, for pages that say it in their own words."""


class ErrorMessage(ServerMessage):
    """A message the server could not act on; the socket stays open. A domain error adds
    its own details (as in the HTTP API's error object)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["error"] = "error"
    code: str
    message: str
    fields: Omittable[list[FieldProblem]] = None
    ref: Omittable[str] = None


class PresenceUpdated(ServerMessage):
    """An interpreter's status changed (by their hand, or by Tolk's with a `reason`)."""

    type: Literal["presence.updated"] = "presence.updated"
    status: Presence
    reason: Omittable[str] = None
    ref: Omittable[str] = None


class LanguagesUpdated(ServerMessage):
    """Live figures of every roster language, for the sockets that watch them."""

    type: Literal["languages.updated"] = "languages.updated"
    languages: list[LanguageFigures]


class LanguagesWatching(ServerMessage):
    """The answer to `languages.watch`: whether the socket now gets the live figures."""

    type: Literal["languages.watching"] = "languages.watching"
    watch: bool
    ref: Omittable[str] = None


class OfferRevocation(ServerMessage):
    """An interpreter's offer no longer stands."""

    type: Literal["offer.revoked"] = "offer.revoked"
    offer_id: str
    reason: Literal["taken", "cancelled", "expired"]


class RequestUpdated(ServerMessage):
    """A counsellor's request changed (state, queue position, expected wait, a new wave)."""

    type: Literal["request.updated"] = "request.updated"
    request: RequestView


class OfferMade(ServerMessage):
    """A request is offered to an interpreter."""

    type: Literal["offer"] = "offer"
    offer: OfferView


class CallUpdated(ServerMessage):
    """A call changed; both participants hear of it (and a hang-up of an ended call)."""

    type: Literal["call.updated"] = "call.updated"
    call: CallView
    ref: Omittable[str] = None


class CallJoined(ServerMessage):
    """The answer to `call.join`."""

    type: Literal["call.joined"] = "call.joined"
    call_id: str
    polite: bool
    peer_present: bool
    ice_servers: list[IceServer]
    ref: Omittable[str] = None


class RelayedSignal(ServerMessage):
    """A description or candidate from the other participant of a call, or from
    participant `from` of a consultation room, as it was sent."""

    type: Literal["signal"] = "signal"
    call_id: Omittable[str] = None
    room_id: Omittable[str] = None
    sender: str = Field(alias="from")
    data: dict[str, Any]


def relayed_signal(call_id: str, sender: str, data: dict[str, Any]) -> bytes:
    """A `RelayedSignal`, encoded without building the model: the relay's hot path, where
    the model would cost more than the relay itself (`data` was checked on arrival)."""
    return orjson.dumps({"type": "signal", "call_id": call_id, "from": sender, "data": data})


class PeerPresence(ServerMessage):
    """The other participant entered the call's room or left it."""

    type: Literal["peer"] = "peer"
    call_id: str
    present: bool


class RoomJoined(ServerMessage):
    """The answer to `room.join`."""

    type: Literal["room.joined"] = "room.joined"
    room_id: str
    self_id: str
    participants: list[ParticipantView]
    polite_to: list[str]
    ice_servers: list[IceServer]
    ref: Omittable[str] = None


class RoomParticipant(ServerMessage):
    """A participant of a room joined, came back, went away or left for good."""

    type: Literal["room.participant"] = "room.participant"
    room_id: str
    participant: ParticipantView
    polite: bool
    left: bool


class RoomUpdated(ServerMessage):
    """A room changed: a request made or accepted, a segment started, a hand-over, the end."""

    type: Literal["room.updated"] = "room.updated"
    room: RoomView
    ref: Omittable[str] = None


BookingReason = Literal[
    "created", "claimed", "given_back", "cancelled", "escalated", "reminder", "started"
]


class BookingUpdated(ServerMessage):
    """A booking changed, was escalated, or its reminder is due."""

    type: Literal["booking.updated"] = "booking.updated"
    booking: BookingView
    reason: BookingReason


AnyServerMessage = ByType[
    Hello
    | Pong
    | ErrorMessage
    | PresenceUpdated
    | LanguagesUpdated
    | LanguagesWatching
    | RequestUpdated
    | OfferMade
    | OfferRevocation
    | CallUpdated
    | CallJoined
    | RelayedSignal
    | PeerPresence
    | RoomJoined
    | RoomParticipant
    | RoomUpdated
    | BookingUpdated
]

SERVER_MESSAGE: TypeAdapter[AnyServerMessage] = TypeAdapter(AnyServerMessage)
"""Reads what the server sends (the headless peers and the tests use it)."""
SERVER_MESSAGE_TYPES: frozenset[str] = message_types(AnyServerMessage)
