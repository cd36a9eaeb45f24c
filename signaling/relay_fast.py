"""The relay's fast path at the socket's edge: a `signal` whose fields plainly pass the
`Signal` model's checks is relayed without building the model, and its `data` goes out as
the bytes it came in (`spliced_data`), not decoded and encoded again. Anything else takes
the model's path, which accepts or answers it exactly as before; with setting
`TOLK_FAST_PATHS=false` every `signal` takes it. tests/signaling/test_fast_paths.py holds
the two to the same answers.
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
_SPLICED_FIELDS = frozenset({"type", "call_id", "ref", "data"})
_DATA_KEY = b'"data"'


def plain_signal(raw: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(call_id, data) of a `signal` that plainly passes the model's checks, else None."""
    call_id = raw.get("call_id")
    data = raw.get("data")
    ref = raw.get("ref")
    if (
        type(call_id) is not str
        or not _CALL_ID_MIN <= len(call_id) <= _CALL_ID_MAX
        or type(data) is not dict
        or (ref is not None and (type(ref) is not str or len(ref) > REF_MAX))
    ):
        return None
    try:
        check_signal_data(data)
    except Exception:  # the model's path answers it with the field named
        return None
    return call_id, data


def spliced_data(frame: bytes, raw: dict[str, Any]) -> bytes | None:
    """The bytes of `raw["data"]` as they stand in `frame` (the plain signal it was decoded
    from), when they can be told apart without a parser; else None.

    They can be when the frame escapes nothing with `\\u` (so every key named `data` is
    spelt so), `"data"` occurs once in it (so that is the top-level key), the message has
    no fields but the signal's and ends with its data (so the data runs to the last `}` but
    one: the others' values are strings or null, which end otherwise).
    """
    start = frame.find(_DATA_KEY)
    if (
        start < 0
        or frame[start + 6 : start + 7] != b":"
        or frame.find(_DATA_KEY, start + 6) >= 0
        or frame[-2:] != b"}}"
        or not raw.keys() <= _SPLICED_FIELDS
        or b"\\u" in frame
    ):
        return None
    return frame[start + 7 : -1]
