"""Stopping the server: scheduled jobs stop starting before the sockets are closed."""

from __future__ import annotations

from apscheduler.schedulers.base import STATE_PAUSED

from accounts.models import Role
from infra.jobs import Jobs
from signaling.keys import HUB
from tolk.app import JOBS


async def test_no_job_starts_while_the_sockets_are_closed(client, factory) -> None:
    """Closing thousands of sockets holds the loop for seconds: jobs due meanwhile would be
    logged as missed, or start against a server that is going away."""
    ws = await factory.socket(await factory.token(await factory.user(Role.INTERPRETER)))
    jobs: Jobs = client.app[JOBS]
    scheduler_states: list[int] = []

    async def on_disconnect(_connection: object) -> None:
        scheduler_states.append(jobs.scheduler.state)

    client.app[HUB].on_disconnect.append(on_disconnect)
    await client.close()
    assert scheduler_states == [STATE_PAUSED]
    assert ws.closed
