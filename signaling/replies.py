"""Messages the server sends on the socket, built in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounts.views import Identity


def hello(identity: Identity, heartbeat_s: float, now: datetime) -> dict[str, Any]:
    """The first message on every socket."""
    return {
        "type": "hello",
        "user": identity.view(),
        "heartbeat_s": int(heartbeat_s),
        "server_time": now,
    }


def error(code: str, message: str, ref: str | None = None, **details: Any) -> dict[str, Any]:
    """An error answer; the socket stays open."""
    reply: dict[str, Any] = {"type": "error", "code": code, "message": message, **details}
    if ref is not None:
        reply["ref"] = ref
    return reply


def answer(message_type: str, ref: str | None, **fields: Any) -> dict[str, Any]:
    """A direct answer to a client message, carrying the client's `ref`."""
    reply: dict[str, Any] = {"type": message_type, **fields}
    if ref is not None:
        reply["ref"] = ref
    return reply
