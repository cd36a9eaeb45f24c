"""The relay's fast path takes a `signal` frame only when the model's path would take it too,
with the same call, ref and data (signaling/relay_fast.py): frames drawn near every bound
the model checks, spelt in several ways."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from infra.http import nul_character_at
from signaling.relay_fast import plain_signal
from wire.client import CLIENT_MESSAGE, MAX_CANDIDATE_CHARS, MAX_SESSION_CHARS
from wire.server import relayed_signal

PROPERTY = settings(
    max_examples=400,
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


_short = st.text(max_size=6)
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
    optional={"sdp": _mostly(st.text(max_size=20)), "other": _odd},
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


def _model_takes(frame: bytes) -> tuple[str, str | None, Any] | None:
    """(call_id, ref, data) of the signal the model's path would relay, else None."""
    try:
        raw = orjson.loads(frame)
        msg = CLIENT_MESSAGE.validate_python(raw)
    except (ValueError, ValidationError):
        return None
    if msg.type != "signal" or msg.call_id is None or nul_character_at(raw, ""):
        return None
    return msg.call_id, msg.ref, msg.data


@PROPERTY
@given(message=_frame, spaced=st.booleans())
def test_the_fast_path_takes_only_what_the_model_takes_and_relays_the_same(message, spaced):
    if spaced:  # spaces after separators, and every character past ASCII escaped
        frame = json.dumps(message).encode()
    else:
        frame = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    fast = plain_signal(frame)
    model = _model_takes(frame)
    if fast is None:
        return
    assert model is not None, frame
    call_id, data, ref = fast
    assert (call_id, ref) == model[:2]
    sent = orjson.loads(relayed_signal(call_id, "u1", data))
    assert sent == orjson.loads(relayed_signal(model[0], "u1", model[2]))


@pytest.mark.parametrize(
    "data",
    [
        {"description": {"type": "offer", "sdp": "v=0\r\n"}},
        {"description": {"type": "rollback"}, "session": "k3x9", "to_session": "p0q2"},
        {"candidate": None},
        {"candidate": {}},
        {"candidate": {"candidate": "c", "sdpMid": None, "sdpMLineIndex": 0}},
        {"candidate": {"candidate": "c", "sdpMLineIndex": 2**63 - 1, "usernameFragment": "u"}},
    ],
)
def test_plain_signals_take_the_fast_path(data):
    """What browsers send is relayed without the model (the saving is lost otherwise)."""
    frame = orjson.dumps({"type": "signal", "call_id": "c" * 22, "data": data, "ref": "r"})
    assert plain_signal(frame) == ("c" * 22, orjson.dumps(data), "r")


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"candidate":null},"to":"x"}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"candidate":{"sdpMLineIndex":1.0}}}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"candidate":{"sdpMLineIndex":18446744073709551615}}}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"description":{"type":"offer","sdp":"\\u0000"}}}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"description":{"type":"offer","sdp":"\xff"}}}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"candidate":null,"candidate":{"x":1}}}',
        b'{"type":"signal","call_id":"cccccccccccccccccccccc","data":{"candidate":null}} x',
    ],
    ids=["field", "float", "uint64", "nul", "utf8", "repeated", "trailing"],
)
def test_anything_else_takes_the_models_path(frame):
    """Another field, a float or an integer beyond 64 bits signed, a NUL, text that is not
    UTF-8, a repeated key whose last value is wrong, trailing bytes: the model answers."""
    assert plain_signal(frame) is None
