"""The objects the socket's messages carry, and the states they name."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


def _absent(value: object) -> bool:
    return value is None


Omittable = Annotated[T | None, Field(exclude_if=_absent)]
"""A field left out of the message when it is None (rather than sent as null)."""


class Presence(StrEnum):
    """Whether an interpreter can take a call right now."""

    OFFLINE = "offline"
    AWAY = "away"
    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class IceServer(BaseModel):
    """One RTCIceServer: STUN as is, TURN with time-limited credentials."""

    urls: list[str]
    username: Omittable[str] = None
    credential: Omittable[str] = None


class LanguageFigures(BaseModel):
    """One roster language's live figures (without its names, which pages already have)."""

    tag: str
    online: int
    available: int
    queued: int
    eta_s: int | None
