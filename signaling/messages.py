"""Messages clients send on the socket, parsed once at the edge into a tagged union.

The server's own messages are built in `signaling.replies`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class ClientMessage(BaseModel):
    """Fields every client message may carry."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ref: str | None = Field(default=None, max_length=100)


class Ping(ClientMessage):
    """An application-level ping; the server answers `pong` (handy behind proxies)."""

    type: Literal["ping"]


class PresenceMessage(ClientMessage):
    """`{"type": "presence", "status"}`: same as PUT /api/interpreters/me/status."""

    type: Literal["presence"]
    status: Literal["available", "away", "offline"]


AnyClientMessage = Annotated[Ping | PresenceMessage, Field(discriminator="type")]

CLIENT_MESSAGE: TypeAdapter[AnyClientMessage] = TypeAdapter(AnyClientMessage)
CLIENT_MESSAGE_TYPES: frozenset[str] = frozenset({"ping", "presence"})
