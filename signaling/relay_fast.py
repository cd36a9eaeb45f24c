"""The relay's fast path at the socket's edge: a `signal` whose fields plainly pass the
`Signal` model's checks (and hold no NUL character) is relayed without building the model
and without scanning its frame for escaped NULs (`plain_signal` looks at its few texts
instead). Anything else takes the model's path, which accepts or answers it exactly as
before; with setting `TOLK_FAST_PATHS=false` every `signal` takes it.
tests/signaling/test_fast_paths.py holds the two to the same answers.

The data goes out encoded again from what was read (`wire.server.relayed_signal`), not
spliced from the sender's bytes: telling the data's bytes apart safely takes scans of the
whole frame (for `\\u` escapes, for a second `"data"`) that cost more than orjson's encoding.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from wire.client import CallJoin, Signal, check_signal_data


def _bound(model: type[BaseModel], field: str, bound: str) -> int:
    """A length bound declared on a model's field, so the fast path checks the same one."""
    return next(
        int(getattr(m, bound)) for m in model.model_fields[field].metadata if hasattr(m, bound)
    )


_CALL_ID_MIN = _bound(CallJoin, "call_id", "min_length")
_CALL_ID_MAX = _bound(CallJoin, "call_id", "max_length")
REF_MAX = _bound(Signal, "ref", "max_length")
"""The longest `ref` a message may carry."""
_FIELDS = frozenset({"type", "call_id", "ref", "data"})
"""A plain signal's fields: any other (`room_id`, `to`, or one the model ignores) takes the
model's path, which weighs them (and looks for NULs in them)."""


def plain_signal(raw: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(call_id, data) of a `signal` that plainly passes the model's checks and holds no
    NUL character in any text, else None."""
    call_id = raw.get("call_id")
    data = raw.get("data")
    ref = raw.get("ref")
    if (
        type(call_id) is not str
        or not _CALL_ID_MIN <= len(call_id) <= _CALL_ID_MAX
        or type(data) is not dict
        or (ref is not None and (type(ref) is not str or len(ref) > REF_MAX or "\x00" in ref))
        or not raw.keys() <= _FIELDS
        or "\x00" in call_id
    ):
        return None
    try:
        check_signal_data(data)
    except Exception:  # the model's path answers it with the field named
        return None
    return (call_id, data) if _free_of_nul(data) else None


def _free_of_nul(data: dict[str, Any]) -> bool:
    """Whether no text of checked signal data holds a NUL. Its keys are the few names
    `check_signal_data` allows and its values texts, numbers, null or one level of such."""
    for value in data.values():
        if type(value) is str:
            if "\x00" in value:
                return False
        elif type(value) is dict:
            for inner in value.values():
                if type(inner) is str and "\x00" in inner:
                    return False
    return True
