"""JSON encoding for the wire: orjson, with datetimes as RFC 3339 UTC strings ending in `Z`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix and whole milliseconds, as the contract says."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prepare(value: Any) -> Any:
    # orjson writes aware datetimes as +00:00; the contract wants Z, so convert first.
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    if isinstance(value, BaseModel):
        return _prepare(value.model_dump(mode="python"))
    if isinstance(value, date):
        return value.isoformat()
    return value


def dumps(value: Any) -> bytes:
    """Encode a value (dicts, lists, pydantic models, datetimes) as JSON bytes."""
    return orjson.dumps(_prepare(value), default=_default)


loads = orjson.loads
"""Decode JSON text (orjson's own function, not a wrapper: the socket decodes every frame
with it). Invalid text raises a ValueError."""
