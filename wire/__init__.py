"""The wire contract of the socket: every message clients send (`wire.client`) and the
server sends (`wire.server`), and the objects they carry (`wire.objects`), as pydantic
models. Packages build these from their rows; docs/protocol.md is checked against them."""

from __future__ import annotations

from typing import Any, get_args


def message_types(union: Any) -> frozenset[str]:
    """The `type` of every message model in a tagged union (an `Annotated` union)."""
    members = get_args(get_args(union)[0])
    return frozenset(get_args(m.model_fields["type"].annotation)[0] for m in members)
