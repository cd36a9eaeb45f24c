"""The relay's fast path takes a `signal` only when the model's path would take it too, with
the same call, ref and data (signaling/relay_fast.py): messages drawn near every bound the
model checks."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.http import nul_character_at
from signaling.relay_fast import REF_MAX, plain_signal
from wire.client import CLIENT_MESSAGE, MAX_CANDIDATE_CHARS, MAX_SESSION_CHARS

PROPERTY = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Each field mostly valid, now and then at or past a bound, of another type, or holding a
# NUL, so that most frames are near the line between the two paths.
_odd = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1.0, -(2**63), 2**63 - 1, 2**63, 2**64, 10**20, "", "a\x00b", []]),
)


def _mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, _odd)


_short = st.one_of(st.text(max_size=6), st.just("a\x00"))
_session = _mostly(
    st.one_of(_short, st.sampled_from(["x" * MAX_SESSION_CHARS, "x" * (MAX_SESSION_CHARS + 1)]))
)
_candidate_text = _mostly(
    st.one_of(_short, st.sampled_from(["x" * MAX_CANDIDATE_CHARS, "x" * (MAX_CANDIDATE_CHARS + 1)]))
)
_candidate = st.fixed_dictionaries(
    {},
    optional={
        "candidate": _candidate_text,
        "sdpMid": _candidate_text,
        "sdpMLineIndex": _mostly(st.integers(min_value=-3, max_value=3)),
        "usernameFragment": _candidate_text,
        "other": _odd,
    },
)
_description = st.fixed_dictionaries(
    {"type": _mostly(st.sampled_from(["offer", "answer", "pranswer", "rollback", "nope"]))},
    optional={"sdp": _mostly(st.one_of(st.text(max_size=20), st.just("v=0\x00"))), "other": _odd},
)
_tags = {"session": _session, "to_session": _session}
_data = _mostly(
    st.one_of(
        st.fixed_dictionaries({"description": _description}, optional=_tags),
        st.fixed_dictionaries({"candidate": st.one_of(st.none(), _candidate)}, optional=_tags),
        st.fixed_dictionaries(
            {}, optional={"description": _description, "candidate": _candidate, **_tags}
        ),
    )
)
_frame = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["signal", "signal", "signal", "ping"]),
        "call_id": _mostly(st.sampled_from(["c" * 22, "c", "c" * 64, "c" * 65])),
        "data": _data,
    },
    optional={"ref": _mostly(st.text(max_size=4)), "room_id": st.just("r1")},
)


def _model_takes(raw: dict[str, Any]) -> tuple[str, str | None, Any] | None:
    """(call_id, ref, data) of the signal the model's path would relay, else None."""
    try:
        msg = CLIENT_MESSAGE.validate_python(raw)
    except ValidationError:
        return None
    if msg.type != "signal" or msg.call_id is None or nul_character_at(raw, ""):
        return None
    return msg.call_id, msg.ref, msg.data


def _fast_takes(raw: dict[str, Any]) -> tuple[str, str | None, Any] | None:
    """(call_id, ref, data) of the signal the socket's fast path would relay, else None."""
    signal = plain_signal(raw) if raw.get("type") == "signal" else None
    return None if signal is None else (signal[0], raw.get("ref"), signal[1])


@PROPERTY
@given(message=_frame)
def test_the_fast_path_takes_only_what_the_model_takes_and_relays_the_same(message):
    raw = orjson.loads(json.dumps(message))  # as the socket reads a frame
    fast = _fast_takes(raw)
    if fast is not None:
        assert _model_takes(raw) == fast, raw


@pytest.mark.parametrize(
    "data",
    [
        {"description": {"type": "offer", "sdp": "v=0\r\n"}},
        {"description": {"type": "rollback"}, "session": "k3x9", "to_session": "p0q2"},
        {"candidate": None},
        {"candidate": {}},
        {"candidate": {"candidate": "c", "sdpMid": None, "sdpMLineIndex": 0}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": 2**64 - 1, "usernameFragment": "u"}},
    ],
)
def test_plain_signals_take_the_fast_path(data):
    """What browsers send is relayed without the model (the saving is lost otherwise)."""
    raw = {"type": "signal", "call_id": "c" * 22, "data": data, "ref": "r"}
    assert plain_signal(raw) == ("c" * 22, data)


@pytest.mark.parametrize(
    "data",
    [
        {"candidate": {"sdpMLineIndex": 1.0}},
        {"candidate": {"sdpMLineIndex": True}},
        {"candidate": {"candidate": "x" * (MAX_CANDIDATE_CHARS + 1)}},
        {"candidate": {"x": 1}},
        {"description": {"type": []}},
        {"description": {"type": "offer", "sdp": "\x00"}},
        {"description": {"type": "offer"}, "candidate": None},
        {"candidate": None, "session": ""},
    ],
    ids=["float", "bool", "long", "field", "listed-type", "nul", "both", "empty-session"],
)
def test_anything_else_takes_the_models_path(data):
    """A value of another type or past its bound, another field, a NUL, both kinds at
    once: the model's path answers it."""
    assert plain_signal({"type": "signal", "call_id": "c" * 22, "data": data}) is None


@pytest.mark.parametrize("ref", ["r" * (REF_MAX + 1), "r\x00", 7])
def test_a_ref_past_its_bound_or_of_another_type_takes_the_models_path(ref):
    """The model's path answers it."""
    raw = {"type": "signal", "call_id": "c" * 22, "data": {"candidate": None}, "ref": ref}
    assert plain_signal(raw) is None
