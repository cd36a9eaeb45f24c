"""The relay's fast path at the socket's edge: a `signal` frame whose fields plainly pass
the `Signal` model's checks (and hold no NUL character) is read by typed decoders, and
its `data` goes out as the bytes it came in, not decoded into a dict and encoded again.
Anything else takes the model's path, which accepts or answers it exactly as before; with
setting `TOLK_FAST_PATHS=false` every `signal` takes it.
tests/signaling/test_fast_paths.py holds the two to the same answers and the same
messages relayed.

The frame is decoded once with `data` kept whole (`msgspec.Raw`: its span found, nothing in
it built), then `data` alone against the shapes `check_signal_data` allows, bounded as it
bounds them: a field it does not know, a value of another type or length, or malformed
text fails that decoding, and the frame goes to the model's path. The relayed frame is then
the server's head and the sender's `data` (`wire.server.relayed_signal`), which is the same
JSON value the model's path sends; spaces and escapes stay as the sender wrote them. What
this saves per relayed message: bench/results/signaling_relay.md.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType
from pydantic import BaseModel

from wire.client import (
    CANDIDATE_FIELDS,
    DESCRIPTION_FIELDS,
    DESCRIPTION_TYPES,
    MAX_CANDIDATE_CHARS,
    MAX_SDP_CHARS,
    MAX_SESSION_CHARS,
    SESSION_TAGS,
    CallJoin,
    Signal,
)


def _bound(model: type[BaseModel], field: str, bound: str) -> int:
    """A length bound declared on a model's field, so the fast path checks the same one."""
    return next(
        int(getattr(m, bound)) for m in model.model_fields[field].metadata if hasattr(m, bound)
    )


REF_MAX = _bound(Signal, "ref", "max_length")
"""The longest `ref` a message may carry."""

_CallId = Annotated[
    str,
    Meta(
        min_length=_bound(CallJoin, "call_id", "min_length"),
        max_length=_bound(CallJoin, "call_id", "max_length"),
    ),
]
_Text = Annotated[str, Meta(max_length=MAX_CANDIDATE_CHARS)]
_Int = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""Integers the model's JSON decoder reads as integers too (larger ones it reads as
floats, which the model refuses; up to 2**64 - 1 it reads them as integers, and they take
its path)."""
_Session = Annotated[str, Meta(min_length=1, max_length=MAX_SESSION_CHARS)]
_DescriptionType = Literal["offer", "answer", "pranswer", "rollback"]


class _Frame(msgspec.Struct, forbid_unknown_fields=True):
    """A plain `signal`: any other field (`room_id`, `to`, or one the model ignores) takes
    the model's path, which weighs it."""

    type: Literal["signal"]
    call_id: _CallId
    data: msgspec.Raw
    ref: Annotated[str, Meta(max_length=REF_MAX)] | None = None


class _Description(msgspec.Struct, forbid_unknown_fields=True):
    type: _DescriptionType
    sdp: Annotated[str, Meta(max_length=MAX_SDP_CHARS)] = ""


class _Candidate(msgspec.Struct, forbid_unknown_fields=True):
    candidate: _Text | UnsetType = UNSET
    sdpMid: _Text | UnsetType | None = UNSET
    sdpMLineIndex: _Int | UnsetType | None = UNSET
    usernameFragment: _Text | UnsetType | None = UNSET


class _Data(msgspec.Struct, forbid_unknown_fields=True):
    description: _Description | UnsetType = UNSET
    candidate: _Candidate | UnsetType | None = UNSET
    session: _Session | UnsetType = UNSET
    to_session: _Session | UnsetType = UNSET


# The shapes above are `check_signal_data`'s; a field added there must be added here.
assert set(_Candidate.__struct_fields__) == CANDIDATE_FIELDS.keys()
assert set(_Description.__struct_fields__) == DESCRIPTION_FIELDS
assert set(_Data.__struct_fields__) == {"description", "candidate", *SESSION_TAGS}
assert set(get_args(_DescriptionType)) == DESCRIPTION_TYPES

_FRAME = msgspec.json.Decoder(_Frame)
_DATA = msgspec.json.Decoder(_Data)


def plain_signal(frame: bytes | str) -> tuple[str, bytes, str | None] | None:
    """(call_id, data as sent, ref) of a `signal` frame that plainly passes the model's
    checks and holds no NUL character in any text, else None."""
    try:
        signal = _FRAME.decode(frame)
        data = _DATA.decode(signal.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if (data.description is UNSET) == (data.candidate is UNSET):
        return None  # the model's path names what is missing or too much
    call_id, ref = signal.call_id, signal.ref
    if "\x00" in call_id or (ref is not None and "\x00" in ref) or _holds_nul(data):
        return None
    return call_id, bytes(signal.data), ref


def _holds_nul(data: _Data) -> bool:
    """Whether a text of checked signal data holds a NUL."""
    texts: list[object] = [data.session, data.to_session]
    if (description := data.description) is not UNSET:
        texts.append(description.sdp)
    elif (candidate := data.candidate) is not None and candidate is not UNSET:
        texts += (candidate.candidate, candidate.sdpMid, candidate.usernameFragment)
    return any(type(text) is str and "\x00" in text for text in texts)
