"""A server kept from running (a starved machine) keeps the clients that answered its
pings meanwhile: the heartbeat's deadline counts only the time the server was awake."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import pytest
from aiohttp import WSMsgType

from infra.config import Settings
from tests.factories import Factory
from tests.waiting import until

HEARTBEAT_S = 2.0
"""The pong is due within 1 s; the server stalls three times as long."""
STALL_S = 3.0
ANSWER_AFTER_S = 0.3
"""How long after the stall the client answers: more than a check of the heartbeat (1/16
of it), less than the pong's deadline."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"ws_heartbeat_s": HEARTBEAT_S})


class Client:
    """A socket in a thread of its own, with its own loop: it answers while the server's
    loop stands still."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.pinged = threading.Event()
        self.resumed = threading.Event()
        self.result: list[str] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(self.url, headers=headers, autoping=False) as ws,
        ):
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            ping = await ws.receive(timeout=10)
            assert ping.type == WSMsgType.PING
            self.pinged.set()
            # The pong goes out shortly after the server runs again (after its heartbeat's
            # next check): late by the stall, in time by the server's awake clock.
            await asyncio.get_running_loop().run_in_executor(None, self.resumed.wait, 10)
            await asyncio.sleep(ANSWER_AFTER_S)
            await ws.pong(ping.data)
            # Still open: answered now, and again after the next ping.
            answers = [await self._ask(ws)]
            while (msg := await ws.receive(timeout=10)).type != WSMsgType.PING:
                pass
            await ws.pong(msg.data)
            answers.append(await self._ask(ws))
            self.result = answers

    async def _ask(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Send a `ping` message; what came back: `pong`, or how the socket ended."""
        await ws.send_json({"type": "ping", "ref": "after"})
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type != WSMsgType.TEXT:
                return msg.type.name
            elif (kind := msg.json()["type"]) == "pong":
                return str(kind)


@pytest.mark.uvloop
async def test_a_stalled_server_keeps_a_client_that_answered(client, factory: Factory):
    """The server stood still for three times the pong's deadline right after its ping; the
    client answered as soon as it ran again: the socket stays open and answers."""
    token = await factory.token(await factory.user())
    peer = Client(str(client.make_url("/ws")), token)
    peer.thread.start()
    try:
        await until(peer.pinged.is_set, timeout=10)
        # The server's loop is kept from running, as on a starved machine.
        time.sleep(STALL_S)  # noqa: ASYNC251
        peer.resumed.set()
        await until(lambda: not peer.thread.is_alive(), timeout=20)
    finally:
        peer.resumed.set()
        await asyncio.get_running_loop().run_in_executor(None, peer.thread.join, 10)
    assert peer.result == ["pong", "pong"]
