"""The headless peers' protocol client against the real server: login, socket, reconnect."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Role
from signaling.keys import HUB
from signaling.peers.client import ApiError, SocketError, TolkClient
from tests.factories import PASSWORD
from tests.signaling.loopback import sqlite_stack

__all__ = ["sqlite_stack"]


@pytest.fixture
def stack(sqlite_stack):
    return sqlite_stack


class TestTolkClient:
    async def test_login_socket_and_answers_by_ref(self, client, factory):
        """It logs in with a cookie, opens the socket, and matches answers by ref."""
        user = await factory.user(Role.INTERPRETER)
        peer = TolkClient(str(client.make_url("")), user.username, PASSWORD)
        try:
            await peer.login()
            assert peer.user_id == user.id
            await peer.connect()
            assert (await peer.ask({"type": "ping"}))["type"] == "pong"
            with pytest.raises(SocketError) as err:
                await peer.ask({"type": "no.such.type"})
            assert err.value.code == "unknown_type"
            servers = await peer.ice_servers()
            assert servers == []
        finally:
            await peer.close()

    async def test_wrong_password_is_an_api_error(self, client, factory):
        """A refused login raises ApiError with the contract's code."""
        user = await factory.user()
        peer = TolkClient(str(client.make_url("")), user.username, "wrong password")
        try:
            with pytest.raises(ApiError) as err:
                await peer.login()
            assert err.value.status == 401
            assert err.value.code == "invalid_credentials"
        finally:
            await peer.close()

    async def test_reconnects_after_the_server_drops_the_socket(self, client, factory):
        """When the socket drops, it comes back by itself and runs its connected hooks."""
        user = await factory.user(Role.INTERPRETER)
        peer = TolkClient(str(client.make_url("")), user.username, PASSWORD, backoff_initial_s=0.05)
        connects: asyncio.Queue[int] = asyncio.Queue()

        async def hook() -> None:
            connects.put_nowait(1)

        peer.on_connected.append(hook)
        await peer.login()
        runner = asyncio.get_running_loop().create_task(peer.run_socket())
        try:
            await asyncio.wait_for(connects.get(), 10)
            await client.app[HUB].close_all()
            await asyncio.wait_for(connects.get(), 10)
            assert (await peer.ask({"type": "ping"}))["type"] == "pong"
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await peer.close()


class TestStopping:
    async def test_a_peer_stopped_just_as_its_message_arrives_stops(self, client, factory):
        """A peer told to stop at the moment the message it waits for arrives stops (before,
        on Python 3.11, it took the message and ran on, and whoever stopped it waited)."""
        user = await factory.user(Role.INTERPRETER)
        peer = TolkClient(str(client.make_url("")), user.username, PASSWORD)
        try:
            await peer.login()
            await peer.connect()
            waiting = asyncio.create_task(peer.wait_for("pong"))

            def stop_on_pong(message: dict[str, object]) -> None:
                if message.get("type") == "pong":
                    waiting.cancel()  # right after the message has reached the waiter

            peer.listeners.append(stop_on_pong)
            await peer.send({"type": "ping"})
            done, _ = await asyncio.wait({waiting}, timeout=5)
            assert waiting in done
            assert waiting.cancelled(), "the peer took the message and ran on"
        finally:
            await peer.close()
