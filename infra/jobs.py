"""Scheduled jobs in progress, so that shutdown lets them finish before the database and
the bus they use are closed under them (a job cancelled at the loop's end is logged by
APScheduler as an error)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class RunningJobs:
    """Runs scheduled jobs and remembers the ones in progress."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, job: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Run one job (the scheduler's entry point: `add_job(jobs.run, args=[job, ...])`)."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await job(*args)
        finally:
            self._tasks.discard(task)

    async def wait(self, timeout_s: float) -> None:
        """Wait for the jobs in progress to end, for `timeout_s` at most."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
