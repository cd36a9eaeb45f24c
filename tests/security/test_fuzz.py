"""Property-based fuzzing of the edge: every HTTP operation with inputs schemathesis draws
from /api/openapi.json (valid and invalid), and the socket with frames hypothesis makes
(malformed JSON, wrong types, deep nesting, huge numbers, binary frames). No answer may be
a 5xx, no socket may close, and every frame gets its answer.

Derandomized, so that a run is repeatable and bounded (about a minute per backend on two cores);
`TOLK_FUZZ_EXAMPLES=200` (and `TOLK_FUZZ_RANDOM=1` for fresh examples) digs deeper.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from infra.config import Settings
from tests.security.live import LiveApp, live_app
from tolk.app import create_app
from tolk.health import OPENAPI
from wire.client import CLIENT_MESSAGE_TYPES

EXAMPLES = int(os.environ.get("TOLK_FUZZ_EXAMPLES", "10"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("TOLK_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
# The operations, as the served document lists them (built without starting anything).
DOCUMENT: dict[str, Any] = create_app(Settings(_env_file=None, secret_key="x" * 16))[OPENAPI]
OPERATIONS = [
    (method.upper(), path, tuple(op["x-roles"]))
    for path, methods in DOCUMENT["paths"].items()
    for method, op in methods.items()
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApp]:
    """SQLite with the in-process bus, then PostgreSQL with the Redis bus."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    # Fast enough that the fuzzer meets the code behind the limits, not the limits.
    with live_app(
        request.param,
        tmp,
        ws_messages_per_second=100_000,
        ws_burst=100_000,
        login_max_failures_per_user=100_000,
        login_max_failures_per_address=100_000,
        open_requests_per_counsellor=100_000,
    ) as app:
        yield app


@pytest.fixture(scope="module")
def tokens(live: LiveApp) -> dict[str, str]:
    return {role.value: live.token(role) for role in Role}


@pytest.fixture(scope="module")
def api(live: LiveApp) -> Any:
    document = requests.get(f"{live.url}/api/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


def _caller_role(roles: tuple[str, ...]) -> str | None:
    """A role the operation lets through, so that the fuzzer reaches its input handling."""
    if not roles:
        return None
    if "any" in roles or "admin" in roles:
        return "admin"
    return roles[0]


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    OPERATIONS,
    ids=[f"{m} {p}" for m, p, _ in OPERATIONS],
)
def test_no_operation_answers_with_a_server_error(api, live, tokens, method, path, roles):
    """Valid and invalid inputs of every operation get a 2xx, 3xx or 4xx, never a 5xx."""
    operation = api[path][method]
    role = _caller_role(roles)
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    http = requests.Session()

    for mode in schemathesis.GenerationMode:

        @FUZZ
        @given(case=operation.as_strategy(mode))
        def answers_without_5xx(case: Any) -> None:
            response = case.call(base_url=live.url, session=http, headers=headers, timeout=15)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:500]}\n{case.as_curl_command()}"
            )

        answers_without_5xx()


# --- the socket ----------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_call_ids = st.text(max_size=80) | _json
_messages = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(CLIENT_MESSAGE_TYPES)) | st.text(max_size=20) | _json},
    optional={
        "ref": st.text(max_size=120) | _json,
        "call_id": _call_ids,
        "data": _json
        | st.fixed_dictionaries({"description": _json})
        | st.fixed_dictionaries({"candidate": _json}),
        "state": st.sampled_from(["connected", "failed"]) | _json,
        "status": st.sampled_from(["available", "away"]) | _json,
    },
)


def _nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"type":' * depth + '"ping"' + "}" * depth


_frames: st.SearchStrategy[str | bytes] = st.one_of(
    _messages.map(json.dumps),
    _json.map(json.dumps),
    st.text(max_size=200),  # mostly no JSON at all
    st.binary(max_size=200),  # binary frames
    st.builds(_nested, st.integers(1, 3000), st.sampled_from(["list", "object"])),
    st.integers(min_value=-(10**400), max_value=10**400).map(
        lambda n: f'{{"type": "ping", "ref": {n}, "call_id": {n}}}'
    ),
    st.sampled_from(['{"type": "ping", "ref": 1e999}', '{"type": -1e400}', '"\\ud800"']),
    _messages.map(lambda m: json.dumps(m).encode()),  # a valid message as a binary frame
)


async def _exchange(url: str, token: str, frames: list[str | bytes]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{url}/ws", headers={"Authorization": f"Bearer {token}"}, max_msg_size=0
        ) as ws,
    ):
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            reply = await ws.receive(timeout=10)
            assert reply.type is aiohttp.WSMsgType.TEXT, (frame[:200], reply, ws.close_code)
            answer = json.loads(reply.data)
            assert answer["type"] in ("error", "pong"), (frame[:200], answer)
            if answer["type"] == "error":
                assert answer["code"] != "internal_error", (frame[:200], answer)
        await ws.send_str('{"type": "ping", "ref": "last"}')
        assert json.loads((await ws.receive(timeout=10)).data) == {"type": "pong", "ref": "last"}


def test_every_socket_frame_is_answered_and_none_closes_the_socket(live, tokens):
    """Whatever arrives in a frame gets one answer, an error or a pong; the socket stays.

    Finance is the caller: it has no calls and gets no news, so each frame is followed by
    exactly its own answer."""

    @settings(FUZZ, max_examples=EXAMPLES * 8)
    @given(frames=st.lists(_frames, min_size=1, max_size=12))
    def answered(frames: list[str | bytes]) -> None:
        asyncio.run(_exchange(live.url, tokens["finance"], frames))

    answered()


def test_the_fuzzed_operations_are_those_the_app_serves(api):
    """The document fuzzed here is the one /api/openapi.json serves."""
    served = {(op.method.upper(), op.path) for op in (r.ok() for r in api.get_all_operations())}
    assert served == {(m, p) for m, p, _ in OPERATIONS}
    assert all(re.fullmatch(r"/[\w/{}.-]*", p) for _, p, _ in OPERATIONS)
