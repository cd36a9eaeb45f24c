"""The simulated interpreter's own life cycle (its calls are in tests/integration)."""

from __future__ import annotations

import asyncio
import os
import signal

from aiohttp import WSMsgType, web

from signaling.peers.client import TolkClient
from signaling.peers.sim import SimInterpreter, SimOptions
from tests.processes import free_port
from tolk.cli import until_stopped


class TestSimInterpreter:
    async def test_stopped_while_waiting_for_the_server_it_closes_its_session(self):
        """Cancelled before the server ever answered: no HTTP session is left open."""
        sim = SimInterpreter(
            SimOptions(url=f"http://127.0.0.1:{free_port()}", username="x", password="y")
        )
        task = asyncio.get_running_loop().create_task(sim.run())
        await asyncio.sleep(0.3)  # a few login attempts against nobody (not a sync)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert sim.client.http.closed

    async def test_closing_cut_short_still_closes_the_session(self):
        """A stop that interrupts the socket's closing handshake (the server, shutting down
        itself, has not answered yet) still closes the HTTP session."""
        close_seen = asyncio.Event()

        async def slow_to_close(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(autoclose=False)
            await ws.prepare(request)
            await ws.send_json({"type": "hello", "user": {"id": "u1"}})
            while (await ws.receive()).type != WSMsgType.CLOSE:
                pass
            close_seen.set()  # and never answer it
            await ws.receive()  # until the client gives up on the connection
            return ws

        app = web.Application()
        app.router.add_get("/ws", slow_to_close)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        peer = TolkClient(f"http://127.0.0.1:{port}", "x", "y")
        try:
            await peer.connect()
            closing = asyncio.ensure_future(peer.close())
            await close_seen.wait()
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
            assert peer.http.closed
        finally:
            await peer.http.close()
            await runner.cleanup()


class TestUntilStopped:
    async def test_a_second_signal_does_not_cut_the_clean_up_short(self):
        """Ctrl-C on `tolk demo` reaches every process and the demo sends SIGTERM as well:
        the simulated interpreter stops once and finishes its clean-up."""
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        handled = asyncio.Event()
        cleaned: list[str] = []

        async def work() -> None:
            try:
                started.set()
                await asyncio.Event().wait()
            finally:
                # The demo's SIGTERM arrives during the clean-up. The loop handles signals
                # in the order they came, so once SIGUSR1's handler ran, SIGTERM's has too.
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGUSR1)
                await handled.wait()
                cleaned.append("done")

        loop.add_signal_handler(signal.SIGUSR1, handled.set)
        try:
            stopped = asyncio.ensure_future(until_stopped(work()))
            await started.wait()
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stopped, 5)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)
        assert cleaned == ["done"]
