"""The app's periodic jobs, on APScheduler: each runs at most once at a time, and shutdown
lets those in progress finish before the database and the bus they use are closed (the
scheduler's own shutdown cancels them mid-way, and logs each as an error). While the
database is unreachable a job backs off instead of failing (and logging) every run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infra.outages import Unavailable

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 4.0
"""A job waits at most this long after the database comes back (no outage lasts hours)."""


class Jobs:
    """Schedules periodic jobs and remembers the ones in progress."""

    def __init__(self, scheduler: AsyncIOScheduler) -> None:
        self.scheduler = scheduler
        self._tasks: set[asyncio.Task[Any]] = set()
        # Per job that found the database unreachable: (when it may run again, the wait).
        self._backoff: dict[Callable[..., Awaitable[object]], tuple[float, float]] = {}

    def every(
        self,
        seconds: float,
        job: Callable[..., Awaitable[object]],
        *args: Any,
        name: str | None = None,
    ) -> Job:
        """Run `job(*args)` every `seconds`; a run still going when the next is due skips it."""
        return self.scheduler.add_job(
            self.run,
            "interval",
            args=[job, *args],
            name=name or job.__name__,
            seconds=seconds,
            max_instances=1,
            coalesce=True,
        )

    async def run(self, job: Callable[..., Awaitable[object]], *args: Any) -> None:
        """Run one job, remembered while it runs; skipped while it backs off."""
        backoff = self._backoff.get(job)
        now = time.monotonic()
        if backoff is not None and now < backoff[0]:
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await job(*args)
        except Unavailable:
            # The database logged the outage once; each run would only repeat it.
            wait = min(backoff[1] * 2, BACKOFF_MAX_S) if backoff else BACKOFF_FIRST_S
            self._backoff[job] = (time.monotonic() + wait, wait)
            return
        finally:
            self._tasks.discard(task)
        if backoff is not None:
            del self._backoff[job]

    async def wait(self, timeout_s: float) -> None:
        """Wait for the jobs in progress to end, for `timeout_s` at most."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    def pause(self) -> None:
        """Start no more jobs; those in progress go on."""
        self.scheduler.pause()

    async def stop(self, timeout_s: float = 5) -> None:
        """Start no more jobs, let those in progress finish, then shut the scheduler down."""
        self.pause()
        await self.wait(timeout_s)
        self.scheduler.shutdown(wait=False)
