"""Call rooms on real sockets: who may join and signal, the relay, held signals, peers."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from sqlmodel import col, select

from accounts.models import Role
from calls.models import CallPresence
from tests.calls.conftest import receive_type, wait_until

OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}
ANSWER = {"description": {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}}
CANDIDATE = {
    "candidate": {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    }
}


async def sockets_in_call(factory: Any, call: Any, *, join: bool = True) -> Any:
    """Both participants' sockets, joined to the call (counsellor first)."""
    counsellor = await factory.socket(await factory.token_for(call.counsellor_id))
    interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
    if join:
        for ws in (counsellor, interpreter):
            await ws.send_json({"type": "call.join", "call_id": call.id})
            await receive_type(ws, "call.joined")
        assert (await receive_type(counsellor, "peer"))["present"] is True
    return counsellor, interpreter


class TestJoin:
    async def test_join_gives_roles_peer_presence_and_ice_servers(self, factory, clock):
        """The interpreter is polite, the counsellor not; peer_present says who is there."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await counsellor.send_json({"type": "call.join", "call_id": call.id, "ref": "j1"})
        joined = await receive_type(counsellor, "call.joined")
        assert joined["ref"] == "j1"
        assert joined["call_id"] == call.id
        assert joined["polite"] is False
        assert joined["peer_present"] is False
        stun, turn = joined["ice_servers"]
        assert stun == {"urls": ["stun:stun.example.org:3478"]}
        expiry, user_id = turn["username"].split(":")
        assert user_id == call.counsellor_id
        assert int(expiry) == int(clock.now().timestamp()) + 3600
        expected = hmac.new(b"turn-shared-secret", turn["username"].encode(), hashlib.sha1)
        assert turn["credential"] == base64.b64encode(expected.digest()).decode()

        await interpreter.send_json({"type": "call.join", "call_id": call.id})
        joined = await receive_type(interpreter, "call.joined")
        assert joined["polite"] is True
        assert joined["peer_present"] is True
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_a_third_user_cannot_join_or_signal_and_nothing_is_relayed(self, factory):
        """Anyone but the two participants gets forbidden, and the peer receives nothing."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        stranger = await factory.socket(await factory.token(await factory.user(Role.COUNSELLOR)))
        await stranger.send_json({"type": "call.join", "call_id": call.id, "ref": "x"})
        reply = await receive_type(stranger, "error")
        assert (reply["code"], reply["ref"]) == ("forbidden", "x")
        await stranger.send_json({"type": "signal", "call_id": call.id, "data": OFFER})
        assert (await receive_type(stranger, "error"))["code"] == "forbidden"
        # The next signal the interpreter sees is the counsellor's, not the stranger's.
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": CANDIDATE})
        relayed = await receive_type(interpreter, "signal")
        assert relayed["from"] == call.counsellor_id
        assert relayed["data"] == CANDIDATE
        for ws in (counsellor, interpreter, stranger):
            await ws.close()

    async def test_signal_before_join_is_refused(self, factory):
        """A participant must join the room before signalling."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": OFFER})
        assert (await receive_type(counsellor, "error"))["code"] == "forbidden"
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_joining_an_ended_call_is_an_error(self, factory):
        """An ended call cannot be joined."""
        call = await factory.call(state="ended")
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await counsellor.send_json({"type": "call.join", "call_id": call.id})
        assert (await receive_type(counsellor, "error"))["code"] == "call_ended"
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_rejoining_after_a_reconnect_reattaches(self, factory):
        """A new socket of the same participant joins again and the relay reaches it."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        await interpreter.close()
        assert (await receive_type(counsellor, "peer"))["present"] is False
        interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
        await interpreter.send_json({"type": "call.join", "call_id": call.id})
        assert (await receive_type(interpreter, "call.joined"))["peer_present"] is True
        assert (await receive_type(counsellor, "peer"))["present"] is True
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": OFFER})
        assert (await receive_type(interpreter, "signal"))["data"] == OFFER
        for ws in (counsellor, interpreter):
            await ws.close()


class TestRelay:
    async def test_signals_are_relayed_both_ways_with_from_added(self, factory):
        """Descriptions and candidates reach the other participant unchanged, with `from`."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": OFFER})
        assert await receive_type(interpreter, "signal") == {
            "type": "signal",
            "call_id": call.id,
            "from": call.counsellor_id,
            "data": OFFER,
        }
        await interpreter.send_json({"type": "signal", "call_id": call.id, "data": ANSWER})
        await interpreter.send_json({"type": "signal", "call_id": call.id, "data": CANDIDATE})
        await interpreter.send_json(
            {"type": "signal", "call_id": call.id, "data": {"candidate": None}}
        )
        got = [await receive_type(counsellor, "signal") for _ in range(3)]
        assert [m["data"] for m in got] == [ANSWER, CANDIDATE, {"candidate": None}]
        assert {m["from"] for m in got} == {call.interpreter_id}
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_malformed_signal_data_is_refused_with_the_field(self, factory):
        """Data that is neither a description nor a candidate gets invalid_message."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        for data in (
            {"description": {"type": "offer"}, "candidate": None},
            {"description": {"type": "bogus", "sdp": ""}},
            {"description": {"type": "offer", "sdp": "x" * 60000}},
            {"candidate": {"candidate": 5}},
            {"hello": 1},
        ):
            await counsellor.send_json({"type": "signal", "call_id": call.id, "data": data})
            reply = await receive_type(counsellor, "error")
            assert reply["code"] == "invalid_message"
            assert reply["fields"][0]["field"] == "signal.data"
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_malformed_signal_fields_are_refused_with_the_field_and_ref(self, factory):
        """A bad call_id, ref or data is answered invalid_message naming it; nothing relayed."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        for message, field in (
            ({"call_id": "", "data": OFFER, "ref": "r"}, "signal.call_id"),
            ({"call_id": "c" * 65, "data": OFFER, "ref": "r"}, "signal.call_id"),
            ({"call_id": 5, "data": OFFER, "ref": "r"}, "signal.call_id"),
            ({"call_id": call.id, "data": OFFER, "ref": "r" * 101}, "signal.ref"),
            ({"call_id": call.id, "data": OFFER, "ref": 7}, "signal.ref"),
            ({"call_id": call.id, "data": [OFFER], "ref": "r"}, "signal.data"),
            ({"call_id": call.id, "ref": "r"}, "signal.data"),
        ):
            await counsellor.send_json({"type": "signal", **message})
            reply = await receive_type(counsellor, "error")
            assert reply["code"] == "invalid_message"
            assert reply["fields"][0]["field"] == field
            ref = message["ref"]
            # A ref comes back only when it is a string the socket would accept (docs/protocol.md).
            echoed = ref if isinstance(ref, str) and len(ref) <= 100 else None
            assert reply.get("ref") == echoed
        # The next signal the interpreter sees is the valid one sent after all of those.
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": CANDIDATE})
        assert (await receive_type(interpreter, "signal"))["data"] == CANDIDATE
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_a_burst_of_signals_arrives_complete_and_in_order(self, factory, settings):
        """A full burst of signals sent back to back reaches the peer in the order sent."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        count = settings.ws_burst - 10  # the joins spent a few of the socket's tokens
        for i in range(count):
            data = {"candidate": {"candidate": f"candidate:{i} 1 udp 1 192.0.2.1 {i} typ host"}}
            await counsellor.send_json({"type": "signal", "call_id": call.id, "data": data})
        got = [(await receive_type(interpreter, "signal"))["data"] for _ in range(count)]
        assert [d["candidate"]["candidate"].split()[0] for d in got] == [
            f"candidate:{i}" for i in range(count)
        ]
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_a_refused_signal_is_answered_with_the_clients_ref(self, factory):
        """A signal to a call the socket has not joined is forbidden, with the ref echoed."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await counsellor.send_json(
            {"type": "signal", "call_id": call.id, "data": OFFER, "ref": "s1"}
        )
        reply = await receive_type(counsellor, "error")
        assert (reply["code"], reply["ref"]) == ("forbidden", "s1")
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_signals_sent_while_the_peer_is_away_are_delivered_when_it_joins(self, factory):
        """Held signals arrive, in order, right after the peer's call.joined."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await counsellor.send_json({"type": "call.join", "call_id": call.id})
        await receive_type(counsellor, "call.joined")
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": OFFER})
        await counsellor.send_json({"type": "signal", "call_id": call.id, "data": CANDIDATE})
        await counsellor.send_json({"type": "ping", "ref": "p"})
        await receive_type(counsellor, "pong")
        factory.clock.advance(30)
        await interpreter.send_json({"type": "call.join", "call_id": call.id})
        assert (await receive_type(interpreter, "call.joined", "signal"))["type"] == "call.joined"
        first = await receive_type(interpreter, "signal")
        second = await receive_type(interpreter, "signal")
        assert [first["data"], second["data"]] == [OFFER, CANDIDATE]
        assert first["from"] == call.counsellor_id
        for ws in (counsellor, interpreter):
            await ws.close()


class TestPeerEvents:
    async def test_peer_events_on_join_and_on_socket_close(self, factory):
        """The other participant hears `peer` present when one joins and absent when it goes."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call, join=False)
        await interpreter.send_json({"type": "call.join", "call_id": call.id})
        await receive_type(interpreter, "call.joined")
        await counsellor.send_json({"type": "call.join", "call_id": call.id})
        await receive_type(counsellor, "call.joined")
        assert await receive_type(interpreter, "peer") == {
            "type": "peer",
            "call_id": call.id,
            "present": True,
        }
        await counsellor.close()
        assert await receive_type(interpreter, "peer") == {
            "type": "peer",
            "call_id": call.id,
            "present": False,
        }

        async def presence_gone():
            async with factory.db.read() as session:
                rows = await session.exec(
                    select(CallPresence).where(col(CallPresence.user_id) == call.counsellor_id)
                )
                return not rows.all()

        await wait_until(presence_gone)
        await interpreter.close()
