"""The socket's fast paths (signaling/turns.py, lean_socket.py, relay_fast.py) and the plain
paths beside them (`TOLK_FAST_PATHS=false`) give a client the same conversation: every
test here runs on both and expects the same frames."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
import structlog
from aiohttp import ClientWebSocketResponse, WSMsgType
from structlog.testing import LogCapture

from accounts.models import Role
from infra.appkeys import BUS, SETTINGS
from infra.bus import publish_json, user_channel
from signaling.hub import CLOSE_TOO_SLOW, Connection
from signaling.keys import HUB
from tests.waiting import until
from tolk.app import create_app
from wire.server import relayed_signal

OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}
CANDIDATE = {"candidate": {"candidate": "candidate:1 1 udp 1 192.0.2.1 5 typ host", "sdpMid": "0"}}
TAGGED = {**OFFER, "session": "k3x9", "to_session": "p0q2"}


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
def settings(request: pytest.FixtureRequest, settings: Any) -> Any:
    return settings.model_copy(update={"fast_paths": request.param, "ws_send_queue": 1000})


async def _until(ws: ClientWebSocketResponse, kind: str, ref: str) -> list[dict[str, Any]]:
    """Every message before the one of `kind` with `ref`, which ends the list."""
    got = []
    while (msg := await ws.receive_json(timeout=10)).get("ref") != ref or msg["type"] != kind:
        got.append(msg)
    return got


async def _joined_call(
    factory: Any,
) -> tuple[Any, ClientWebSocketResponse, ClientWebSocketResponse]:
    """A call, and its counsellor's and interpreter's sockets, both joined to it."""
    call = await factory.call()
    counsellor = await factory.socket(await factory.token_for(call.counsellor_id))
    interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
    for ws in (counsellor, interpreter):
        await ws.send_json({"type": "call.join", "call_id": call.id, "ref": "j"})
        await _until(ws, "call.joined", "j")
    return call, counsellor, interpreter


class TestSameConversation:
    @pytest.mark.parametrize(("count", "size"), [(400, 32_000), (900, 8_000)])
    async def test_a_burst_of_news_arrives_whole_and_in_order(self, client, factory, count, size):
        """News far beyond what the socket buffers hold at once (so that the transport
        pauses) reaches the client whole and in order, followed by the answer to a ping,
        in long frames and in shorter ones."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        pad = "x" * size
        for n in range(count):
            await publish_json(client.app[BUS], user_channel(user.id), {"n": n, "pad": pad})
        await ws.send_json({"type": "ping", "ref": "after"})
        got = await _until(ws, "pong", "after")
        assert [m["n"] for m in got] == list(range(count))
        await ws.close()
        await factory.eventually_connections(user, 0)

    async def test_frames_behind_a_slow_one_are_answered_in_order(self, factory):
        """Frames that arrive while an earlier one is still being handled (it waits for the
        database) are answered after it and in the order sent, also when so many wait that
        the server stops reading for a while."""
        call = await factory.call()
        ws = await factory.socket(await factory.token_for(call.counsellor_id))
        await ws.send_json({"type": "call.join", "call_id": call.id, "ref": "j"})
        for n in range(60):
            await ws.send_json({"type": "ping", "ref": f"p{n}"})
        await ws.ping(b"alive")
        answered: list[str] = []
        while len(answered) < 61:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] in ("call.joined", "pong"):
                answered.append(msg["ref"])
        assert answered == ["j", *(f"p{n}" for n in range(60))]
        await ws.close()
        assert ws.close_code == 1000

    async def test_signals_are_relayed_or_refused_alike(self, factory):
        """Plain signals are relayed as they are; malformed ones are answered with the
        field at fault and the ref (also one naming both a call and a room, one with a NUL
        in its ref, and data of a wrong type or length); a call not joined is refused."""
        call, counsellor, interpreter = await _joined_call(factory)
        for message in (
            {"call_id": call.id, "data": OFFER, "ref": "a"},
            {"call_id": "", "data": OFFER, "ref": "r"},
            {"call_id": call.id, "data": OFFER, "ref": 7},
            {"call_id": call.id, "data": [OFFER], "ref": "r"},
            {"call_id": call.id, "data": CANDIDATE},
            {"call_id": "z" * 22, "data": OFFER, "ref": "f"},
            {"call_id": call.id, "data": {"hello": 1}},
            {"call_id": call.id, "data": {"candidate": None}},
            {"call_id": call.id, "data": TAGGED},
            {"call_id": call.id, "room_id": "r1", "data": OFFER, "ref": "both"},
            {"call_id": call.id, "data": OFFER, "ref": "nul\u0000"},
            {"call_id": call.id, "data": {"description": {"type": []}}, "ref": "t"},
            {"call_id": call.id, "data": {"candidate": {"sdpMLineIndex": 1.0}}, "ref": "i"},
            {"call_id": call.id, "data": {"candidate": {"sdpMLineIndex": 2**64 - 1}}},
            {"call_id": call.id, "data": {**OFFER, "session": ""}, "ref": "s"},
        ):
            await counsellor.send_json({"type": "signal", **message})
        await counsellor.send_json({"type": "ping", "ref": "end"})
        answers = [m for m in await _until(counsellor, "pong", "end") if m["type"] == "error"]
        assert [
            (m["code"], m.get("fields", [{}])[0].get("field"), m.get("ref")) for m in answers
        ] == [
            ("invalid_message", "signal.call_id", "r"),
            ("invalid_message", "signal.ref", None),
            ("invalid_message", "signal.data", "r"),
            ("forbidden", None, "f"),
            ("invalid_message", "signal.data", None),
            ("invalid_message", "signal", "both"),
            ("invalid_message", "ref", "nul\u0000"),
            ("invalid_message", "signal.data", "t"),
            ("invalid_message", "signal.data", "i"),
            ("invalid_message", "signal.data", "s"),
        ]
        relayed: list[dict[str, Any]] = []
        while len(relayed) < 5:
            msg = await interpreter.receive_json(timeout=10)
            if msg["type"] == "signal":
                relayed.append(msg)
        assert relayed == [
            {"type": "signal", "call_id": call.id, "from": call.counsellor_id, "data": data}
            for data in (
                OFFER,
                CANDIDATE,
                {"candidate": None},
                TAGGED,
                {"candidate": {"sdpMLineIndex": 2**64 - 1}},
            )
        ]
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_signals_sent_right_behind_a_join_are_relayed_in_order(self, factory):
        """Signals sent without waiting for `call.joined` wait behind the join (which reads
        and writes the database), so they are relayed, not refused, and in the order sent,
        as are candidates sent between pings."""
        call = await factory.call()
        counsellor = await factory.socket(await factory.token_for(call.counsellor_id))
        interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
        await interpreter.send_json({"type": "call.join", "call_id": call.id, "ref": "j"})
        await _until(interpreter, "call.joined", "j")
        await counsellor.send_json({"type": "call.join", "call_id": call.id, "ref": "j"})
        for n in range(20):
            candidate = {"candidate": {**CANDIDATE["candidate"], "sdpMLineIndex": n}}
            await counsellor.send_json({"type": "signal", "call_id": call.id, "data": candidate})
            await counsellor.send_json({"type": "ping", "ref": f"p{n}"})
        answers = await _until(counsellor, "pong", "p19")
        assert [m["type"] for m in answers if m["type"] in ("error", "call.joined")] == [
            "call.joined"
        ]
        relayed: list[int] = []
        while len(relayed) < 20:
            msg = await interpreter.receive_json(timeout=10)
            if msg["type"] == "signal":
                relayed.append(msg["data"]["candidate"]["sdpMLineIndex"])
        assert relayed == list(range(20))
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_signals_go_out_as_sent_whatever_their_spelling(self, factory):
        """A signal reaches the peer as the same frame on both paths, byte for byte when it
        was sent compact; spelt otherwise (keys in another order, spaces, escapes, the
        word data in other places, fields repeated) it reaches the peer as the message the
        server read, and a NUL in its SDP is refused alike."""
        call, counsellor, interpreter = await _joined_call(factory)
        head = f'{{"type":"signal","call_id":"{call.id}"'
        answer = {"description": {"type": "answer", "sdp": 'a="data":1'}}
        offer, tagged, quoted = (
            json.dumps(d, separators=(",", ":")) for d in (OFFER, TAGGED, answer)
        )
        frames = [
            f'{head},"data":{offer}}}',
            f'{head},"data":{tagged}}}',
            f'{head},"data":{json.dumps(CANDIDATE, separators=(",", ":"))}}}',
            f'{head},"data":{{"candidate":null}}}}',
            f'{head},"ref":"say \\"data\\"","data":{offer}}}',
            f'{{"data":{offer},"call_id":"{call.id}","type":"signal"}}',
            f'{head}, "data" : {json.dumps(TAGGED)} }}',
            f'{head},"data":{offer},"call_id":"{call.id}"}}',
            f'{head},"data":{{"candidate":null}},"d\\u0061ta":{offer}}}',
            f'{head},"x":{{"data":{{}}}},"data":{offer}}}',
            f'{head},"data":{quoted}}}',
        ]
        for frame in frames:
            await counsellor.send_str(frame)
        nul = {"description": {"type": "offer", "sdp": "v=0\u0000"}}
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": nul, "ref": "n"})
        await counsellor.send_json({"type": "ping", "ref": "end"})
        answers = [m for m in await _until(counsellor, "pong", "end") if m["type"] == "error"]
        assert [(m["code"], m["fields"][0]["field"], m["ref"]) for m in answers] == [
            ("invalid_message", "data.description.sdp", "n")
        ]
        relayed: list[str] = []
        while len(relayed) < len(frames):
            msg = await interpreter.receive_str(timeout=10)
            if msg.startswith('{"type":"signal"'):
                relayed.append(msg)
        sent = [json.loads(frame)["data"] for frame in frames]
        assert [json.loads(m) for m in relayed] == [
            {"type": "signal", "call_id": call.id, "from": call.counsellor_id, "data": data}
            for data in sent
        ]
        assert relayed[:4] == [
            relayed_signal(call.id, call.counsellor_id, data).decode() for data in sent[:4]
        ]
        for ws in (counsellor, interpreter):
            await ws.close()


def _signal(call_id: str, n: int) -> dict[str, Any]:
    """A `signal` with candidate number `n`."""
    data = {"candidate": {**CANDIDATE["candidate"], "sdpMLineIndex": n}}
    return {"type": "signal", "call_id": call_id, "data": data}


async def _signals(ws: ClientWebSocketResponse, count: int) -> list[int]:
    """The numbers of the next `count` candidates relayed to a socket."""
    got: list[int] = []
    while len(got) < count:
        msg = await ws.receive_json(timeout=10)
        if msg["type"] == "signal":
            got.append(msg["data"]["candidate"]["sdpMLineIndex"])
    return got


async def _socket_at(client: Any, token: str) -> ClientWebSocketResponse:
    """A socket on the instance `client` serves, past its hello."""
    ws = await client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"})
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    return ws


async def _join(ws: ClientWebSocketResponse, call_id: str) -> None:
    await ws.send_json({"type": "call.join", "call_id": call_id, "ref": "j"})
    await _until(ws, "call.joined", "j")


_RELAY = ("signal", "error")
"""What a socket gets from the relay (besides news of the call, which a new tab gets)."""


class TestSameRelay:
    async def test_every_tab_of_the_peer_gets_the_signals_in_order(self, client, factory):
        """A peer with two tabs (one of them not in the call) gets every signal in each,
        in the order sent; the sender's own other tab gets none; /metrics counts them
        once each, and a refused one as refused."""
        call, counsellor, interpreter = await _joined_call(factory)
        other_tab = await factory.socket(await factory.token_for(call.interpreter_id))
        sender_tab = await factory.socket(await factory.token_for(call.counsellor_id))
        for n in range(30):
            await counsellor.send_json(_signal(call.id, n))
        await sender_tab.send_json(_signal(call.id, 0))
        assert await _signals(interpreter, 30) == list(range(30))
        assert await _signals(other_tab, 30) == list(range(30))
        await sender_tab.send_json({"type": "ping", "ref": "end"})
        answers = await _until(sender_tab, "pong", "end")
        assert [m.get("code", m["type"]) for m in answers if m["type"] in _RELAY] == ["forbidden"]
        text = await (await client.get("/metrics")).text()
        assert 'tolk_socket_messages_total{type="signal"} 31.0' in text
        assert 'tolk_relay_messages_total{result="relayed"} 30.0' in text
        assert 'tolk_relay_messages_total{result="refused"} 1.0' in text
        for ws in (counsellor, interpreter, other_tab, sender_tab):
            await ws.close()

    async def test_signals_for_an_absent_peer_are_held_and_then_come_in_order(self, factory):
        """Signals sent before the peer joined wait for them, and reach them ahead of
        those sent after, all in the order sent."""
        call = await factory.call()
        counsellor = await factory.socket(await factory.token_for(call.counsellor_id))
        await _join(counsellor, call.id)
        for n in range(10):
            await counsellor.send_json(_signal(call.id, n))
        await counsellor.send_json({"type": "ping", "ref": "held"})
        assert [m for m in await _until(counsellor, "pong", "held") if m["type"] in _RELAY] == []
        interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
        await interpreter.send_json({"type": "call.join", "call_id": call.id, "ref": "j"})
        # Held ones are still being handed over while these arrive: they queue behind.
        for n in range(10, 20):
            await counsellor.send_json(_signal(call.id, n))
        assert await _signals(interpreter, 20) == list(range(20))
        for ws in (counsellor, interpreter):
            await ws.close()

    # Only the Redis stack: instances share news through it.
    @pytest.mark.parametrize("stack", ["postgres"], indirect=True)
    async def test_a_peer_on_another_instance_gets_the_signals_through_the_bus(
        self, stack, settings, clock, factory, aiohttp_client
    ):
        """A peer whose tabs are on this instance and on another one gets every signal in
        each, in order, and signals from the other instance come back alike."""
        second = await aiohttp_client(
            create_app(settings, clock=clock, search_path=stack.search_path)
        )
        call = await factory.call()
        counsellor = await factory.socket(await factory.token_for(call.counsellor_id))
        away = await _socket_at(second, await factory.token_for(call.interpreter_id))
        here = await factory.socket(await factory.token_for(call.interpreter_id))
        for ws in (counsellor, away):
            await _join(ws, call.id)
        for n in range(30):
            await counsellor.send_json(_signal(call.id, n))
        assert await _signals(away, 30) == list(range(30))
        assert await _signals(here, 30) == list(range(30))
        for n in range(30):
            await away.send_json(_signal(call.id, n))
        assert await _signals(counsellor, 30) == list(range(30))
        for ws in (counsellor, away, here):
            await ws.close()


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> LogCapture:
    """What the socket module logs from now on (its logger is cached once used)."""
    capture = LogCapture()
    logger = structlog.wrap_logger(
        None, processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(0)
    )
    monkeypatch.setattr("signaling.socket.log", logger)
    return capture


class TestSameBackPressure:
    @pytest.fixture
    def settings(self, settings: Any) -> Any:
        return settings.model_copy(update={"ws_burst": 10_000})

    async def test_a_flood_during_a_slow_greeting_is_held_back_and_answered_in_order(
        self, client, factory
    ):
        """Frames sent while the socket is still being greeted (its hooks may wait for the
        database) are answered once it is, in the order sent; on the fast path the server
        stops reading meanwhile rather than hold them all."""
        gate = asyncio.Event()
        greeting: list[Connection] = []

        async def slow(conn: Connection) -> None:
            greeting.append(conn)
            await gate.wait()

        client.app[HUB].on_connect.append(slow)
        ws = await factory.socket(await factory.token(await factory.user()))
        await until(lambda: bool(greeting))
        served: Any = greeting[0].ws
        transport = served._transport

        async def flood() -> None:
            for n in range(400):  # padded with what does not compress
                pad = secrets.token_urlsafe(750)
                await ws.send_json({"type": "ping", "ref": f"p{n}", "pad": pad})

        sending = asyncio.create_task(flood())
        if client.app[SETTINGS].fast_paths:  # aiohttp's queue (the plain path) holds them all
            await until(lambda: not transport.is_reading())
        gate.set()
        answered: list[str] = []
        while len(answered) < 400:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "pong":
                answered.append(msg["ref"])
        await sending
        assert answered == [f"p{n}" for n in range(400)]
        await ws.close()


class TestSameClose:
    async def test_a_close_by_the_server_is_logged_with_the_code_sent(
        self, client, factory, logged
    ):
        """A socket the server closes (here: a client too slow to keep up) is logged as
        closed with the code it was sent."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        (conn,) = client.app[HUB].connections_of(user.id)
        closing = asyncio.create_task(conn.close(CLOSE_TOO_SLOW, "too slow"))
        msg = await ws.receive(timeout=5)
        await closing
        await until(lambda: any(e["event"] == "socket_closed" for e in logged.entries))
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, CLOSE_TOO_SLOW)
        codes = [e["code"] for e in logged.entries if e["event"] == "socket_closed"]
        assert codes == [CLOSE_TOO_SLOW]

    async def test_a_frame_whose_handling_breaks_closes_the_socket_with_1011(
        self, factory, logged, monkeypatch
    ):
        """A frame whose handling fails unexpectedly (here: answering a ping) is logged as
        the socket failing, and the socket is closed with 1011."""

        async def broken(*_: Any, **__: Any) -> None:
            raise RuntimeError("broken")

        monkeypatch.setattr("signaling.socket._Socket.pong", broken)
        ws = await factory.socket(await factory.token(await factory.user()))
        await ws.ping(b"alive")
        msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1011)
        await until(lambda: any(e["event"] == "socket_closed" for e in logged.entries))
        events = [(e["event"], e.get("code")) for e in logged.entries]
        assert events[-2:] == [("socket_failed", None), ("socket_closed", 1011)]


class TestSameHeartbeat:
    @pytest.fixture
    def settings(self, settings: Any) -> Any:
        return settings.model_copy(update={"ws_heartbeat_s": 0.2})

    async def test_pings_go_out_and_a_silent_client_is_dropped(self, client, factory):
        """A silent client is pinged; one that stops answering is dropped."""
        user = await factory.user(Role.INTERPRETER)
        ws = await factory.socket(await factory.token(user), autoping=False)
        msg = await ws.receive(timeout=5)
        assert msg.type == WSMsgType.PING
        await ws.pong(msg.data)
        while (msg := await ws.receive(timeout=5)).type == WSMsgType.PING:
            pass
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
        await factory.eventually_connections(user, 0)
