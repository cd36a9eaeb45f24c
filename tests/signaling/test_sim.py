"""The simulated interpreter's own life cycle (its calls are in tests/integration)."""

from __future__ import annotations

import asyncio

from signaling.peers.sim import SimInterpreter, SimOptions
from tests.integration.server import free_port


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
