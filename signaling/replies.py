"""Direct answers of the call rooms and presence, until they build `wire.server` models."""

from __future__ import annotations

from typing import Any

from wire.server import ErrorMessage


def error(code: str, message: str, ref: str | None = None, **details: Any) -> ErrorMessage:
    """An error answer; the socket stays open."""
    return ErrorMessage(code=code, message=message, ref=ref, **details)


def answer(message_type: str, ref: str | None, **fields: Any) -> dict[str, Any]:
    """A direct answer to a client message, carrying the client's `ref`."""
    reply: dict[str, Any] = {"type": message_type, **fields}
    if ref is not None:
        reply["ref"] = ref
    return reply
