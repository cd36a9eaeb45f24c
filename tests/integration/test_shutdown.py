"""`tolk serve` stopped with SIGTERM (a service manager, `tolk demo`'s Ctrl-C) while
clients hold sockets open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.integration.server import TolkServer, serving
from tolk.demo import DEMO_PASSWORD


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TolkServer]:
    async with serving("sqlite", tmp_path) as server:
        yield server


class TestGracefulStop:
    @pytest.mark.timeout(60)
    async def test_sigterm_tells_open_sockets_to_go_away_and_exits(self, server):
        """Open sockets get `going away` (1001) at once and the process exits, instead of
        waiting for the clients to leave."""
        # unsafe=True: keep the session cookie of 127.0.0.1.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            origin = {"Origin": server.url}
            login = {"username": "olena", "password": DEMO_PASSWORD}
            async with http.post(server.url + "/api/session", json=login, headers=origin) as r:
                assert r.status == 200
            async with http.ws_connect(server.url + "/ws", headers=origin) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                assert server.proc is not None
                server.proc.terminate()
                async with asyncio.timeout(15):
                    while (msg := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                        pass
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, server.proc.wait, 15) == 0
