"""The wire contract of the socket: every message clients send (`wire.client`) and the
server sends (`wire.server`), and the objects they carry (`wire.objects`), as pydantic
models. Packages build these from their rows; docs/protocol.md is checked against them."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, Field

M = TypeVar("M")

ByType = Annotated[M, Field(discriminator="type")]
"""A union of message models told apart by their `type` (the socket's messages, each way)."""


def message_models(union: Any) -> dict[str, type[BaseModel]]:
    """Each message model of a tagged union (an `Annotated` union), by its `type`."""
    members: tuple[type[BaseModel], ...] = get_args(get_args(union)[0])
    return {get_args(m.model_fields["type"].annotation)[0]: m for m in members}


def message_types(union: Any) -> frozenset[str]:
    """The `type` of every message model in a tagged union."""
    return frozenset(message_models(union))
