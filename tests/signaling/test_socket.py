"""The /ws envelope: authentication, hello, error replies, limits and fan-out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import WSMsgType

from accounts.models import Role
from infra.appkeys import BUS
from infra.bus import publish_json, user_channel
from signaling.hub import Connection
from signaling.keys import HUB


class TestSocketAuth:
    async def test_upgrade_without_auth_is_401(self, client):
        """Nobody logged in: the upgrade is refused with 401."""
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await client.ws_connect("/ws")
        assert err.value.status == 401

    async def test_cookie_socket_gets_hello(self, client, factory):
        """A logged-in browser opens a socket with its cookie and gets hello with its user."""
        user = await factory.user(Role.INTERPRETER)
        await factory.login(user)
        ws = await client.ws_connect("/ws", headers=factory.headers())
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        assert hello["user"]["id"] == user.id
        assert hello["heartbeat_s"] == 15
        assert hello["server_time"].endswith("Z")
        await ws.close()

    async def test_hello_comes_before_news_that_arrived_while_attaching(self, client, factory):
        """News that reaches a socket while it is still being attached (a broadcast racing
        the connect) is delivered after `hello`, never before it."""

        async def news_during_attach(conn: Connection) -> None:
            conn.send({"type": "languages.updated", "languages": []})

        client.app[HUB].on_attach.append(news_during_attach)
        user = await factory.user(Role.COUNSELLOR)
        await factory.login(user)
        ws = await client.ws_connect("/ws", headers=factory.headers())
        first = await ws.receive_json(timeout=5)
        second = await ws.receive_json(timeout=5)
        assert [first["type"], second["type"]] == ["hello", "languages.updated"]
        await ws.close()

    async def test_foreign_origin_cannot_open_socket(self, client, factory):
        """A page on another site cannot open a socket with the user's cookie."""
        user = await factory.user()
        await factory.login(user)
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
        assert err.value.status == 403

    async def test_logout_closes_the_sessions_sockets(self, client, factory):
        """Logging out closes the sockets opened with that session."""
        user = await factory.user()
        await factory.login(user)
        ws = await client.ws_connect("/ws", headers=factory.headers())
        await ws.receive_json(timeout=5)
        await client.delete("/api/session", headers=factory.headers())
        msg = await ws.receive(timeout=5)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == 4401

    async def test_deactivation_closes_every_socket_of_the_user(self, client, factory):
        """Deactivating a user closes their sockets, token ones included."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        await factory.login(admin)
        await client.patch(
            f"/api/admin/users/{user.id}", json={"active": False}, headers=factory.headers()
        )
        await ws.receive(timeout=5)
        assert ws.close_code == 4401


class TestSocketMessages:
    async def test_malformed_and_unknown_messages_get_errors_and_socket_stays_open(self, factory):
        """Bad JSON, non-objects, unknown types and invalid fields each get an error reply."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        await ws.send_str("{not json")
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_json"
        await ws.send_str("[1, 2]")
        assert (await ws.receive_json(timeout=5))["code"] == "invalid_message"
        await ws.send_json({"type": "teleport", "ref": "r1"})
        reply = await ws.receive_json(timeout=5)
        assert reply == {
            "type": "error",
            "code": "unknown_type",
            "message": "Unknown message type 'teleport'.",
            "ref": "r1",
        }
        await ws.send_json({"type": "ping", "ref": "r2"})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "ref": "r2"}
        await ws.close()

    async def test_frame_over_64_kib_closes_with_1009(self, factory):
        """A frame over 64 KiB closes the socket with code 1009."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        await ws.send_str('{"type":"ping","pad":"' + "x" * (64 * 1024) + '"}')
        msg = await ws.receive(timeout=5)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        assert ws.close_code == 1009

    async def test_a_huge_frame_still_closes_with_1009_not_1006(self, factory):
        """A 16 MiB frame is refused with 1009 that the client reads, although it is still
        sending when the server refuses it (a reset would have lost the close frame)."""
        user = await factory.user()
        for _ in range(3):
            ws = await factory.socket(await factory.token(user))
            await ws.send_str('{"type":"ping","pad":"' + "x" * (16 * 1024 * 1024) + '"}')
            msg = await ws.receive(timeout=5)
            assert msg.type is WSMsgType.CLOSE
            assert ws.close_code == 1009

    async def test_a_type_that_is_no_string_gets_an_error_and_the_socket_stays(self, factory):
        """`{"type": []}`, `{"type": {}}` and friends are answered, never a 1011 close."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        for kind in ([], {}, [["signal"]], {"a": 1}, 1, 1.5, True, None):
            await ws.send_json({"type": kind, "ref": "r"})
            reply = await ws.receive_json(timeout=5)
            assert reply["type"] == "error", kind
            assert reply["code"] == "invalid_message"
            assert reply["ref"] == "r"
            assert reply["fields"][0]["field"] == "type"
        await ws.send_json({"type": "ping", "ref": "still"})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "ref": "still"}
        await ws.close()
        assert ws.close_code == 1000

    async def test_a_long_ref_or_type_is_not_echoed_back_whole(self, factory):
        """An error reply quotes at most a little of what the client sent."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        await ws.send_json({"type": "x" * 30_000, "ref": "y" * 30_000})
        reply = await ws.receive_json(timeout=5)
        assert reply["code"] == "unknown_type"
        assert "ref" not in reply
        assert len(reply["message"]) < 200
        await ws.close()

    async def test_message_flood_is_rate_limited(self, factory, settings):
        """A client sending faster than the limit gets rate_limited errors."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user))
        for i in range(settings.ws_burst + 5):
            await ws.send_json({"type": "ping", "ref": str(i)})
        codes = []
        for _ in range(settings.ws_burst + 5):
            reply = await ws.receive_json(timeout=5)
            codes.append(reply.get("code", reply["type"]))
        assert codes.count("pong") >= settings.ws_burst
        assert "rate_limited" in codes
        await ws.close()

    async def test_bus_news_reaches_every_socket_of_the_user(self, client, factory):
        """A message published to user:<id> arrives on each of that user's sockets only."""
        user = await factory.user()
        other = await factory.user()
        token = await factory.token(user)
        tab1, tab2 = await factory.socket(token), await factory.socket(token)
        stranger = await factory.socket(await factory.token(other))
        await publish_json(client.app[BUS], user_channel(user.id), {"type": "news", "n": 1})
        assert await tab1.receive_json(timeout=5) == {"type": "news", "n": 1}
        assert await tab2.receive_json(timeout=5) == {"type": "news", "n": 1}
        await stranger.send_json({"type": "ping"})
        assert (await stranger.receive_json(timeout=5))["type"] == "pong"
        for ws in (tab1, tab2, stranger):
            await ws.close()


class TestSlowClients:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"ws_send_queue": 32})

    async def test_a_client_that_stops_reading_is_dropped_after_what_it_got_in_order(
        self, client, factory
    ):
        """News for a client that reads nothing queues up; past the limit it is closed 4408."""
        from signaling.hub import CLOSE_TOO_SLOW
        from signaling.keys import HUB

        user = await factory.user()
        ws = await factory.socket(await factory.token(user), max_msg_size=0)
        (conn,) = client.app[HUB].connections_of(user.id)
        pad = "x" * 32_000
        sent = 0
        # Enough to fill the socket buffers of both ends (a few MB on loopback) and then
        # the outbox; stop as soon as the server gives up on the client.
        while sent < 4000 and not conn.ws.closed:
            await publish_json(client.app[BUS], user_channel(user.id), {"n": sent, "pad": pad})
            sent += 1
            await asyncio.sleep(0)  # news arrives over time, not all in one turn of the loop
        got = []
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type != WSMsgType.TEXT:
                break
            got.append(msg.json()["n"])
        assert ws.close_code == CLOSE_TOO_SLOW
        assert got == list(range(len(got)))
        assert 0 < len(got) < sent


class TestHeartbeat:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"ws_heartbeat_s": 0.2})

    async def test_a_silent_client_is_pinged_and_stays_while_it_answers(self, client, factory):
        """The server pings a client silent for a heartbeat; one that answers stays open."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user), autoping=False)
        for _ in range(3):
            msg = await ws.receive(timeout=5)
            assert msg.type == WSMsgType.PING
            await ws.pong(msg.data)
        await ws.send_json({"type": "ping", "ref": "still"})
        while (msg := await ws.receive(timeout=5)).type == WSMsgType.PING:
            await ws.pong(msg.data)
        assert msg.json() == {"type": "pong", "ref": "still"}
        await ws.close()

    async def test_a_client_that_leaves_the_ping_unanswered_is_dropped(self, client, factory):
        """No pong within half a heartbeat of the ping: the server drops the connection."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user), autoping=False)
        assert (await ws.receive(timeout=5)).type == WSMsgType.PING
        while (msg := await ws.receive(timeout=5)).type == WSMsgType.PING:
            pass
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
        await factory.eventually_connections(user, 0)

    async def test_the_servers_pong_answers_a_clients_ping(self, client, factory):
        """A client's own ping (aiohttp's client heartbeat) gets its pong."""
        user = await factory.user()
        ws = await factory.socket(await factory.token(user), autoping=False)
        await ws.ping(b"tick")
        while (msg := await ws.receive(timeout=5)).type == WSMsgType.PING:
            await ws.pong(msg.data)
        assert msg.type == WSMsgType.PONG
        assert msg.data == b"tick"
        await ws.close()
