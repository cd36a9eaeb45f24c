"""Shutdown lets scheduled jobs in progress finish before it closes what they use; a job
backs off while the database is unreachable."""

from __future__ import annotations

import asyncio

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from infra.jobs import BACKOFF_FIRST_S, Jobs
from infra.outages import Unavailable


class TestJobs:
    async def test_wait_returns_once_the_job_in_progress_has_finished(self) -> None:
        """A job mid-way is waited for, and ends by itself rather than being cancelled."""
        jobs = Jobs(AsyncIOScheduler())
        started, release = asyncio.Event(), asyncio.Event()
        finished: list[str] = []

        async def job(name: str) -> None:
            started.set()
            await release.wait()
            finished.append(name)

        running = asyncio.ensure_future(jobs.run(job, "sweep"))
        await started.wait()
        waiting = asyncio.ensure_future(jobs.wait(5))
        release.set()
        await waiting
        assert finished == ["sweep"]
        assert running.done()
        assert not running.cancelled()

    async def test_wait_gives_up_after_its_timeout(self) -> None:
        """A job that does not end holds shutdown up for the timeout only."""
        jobs = Jobs(AsyncIOScheduler())
        started, release = asyncio.Event(), asyncio.Event()

        async def job() -> None:
            started.set()
            await release.wait()

        running = asyncio.ensure_future(jobs.run(job))
        await started.wait()
        await jobs.wait(0.05)
        assert not running.done()
        release.set()
        await running

    async def test_nothing_to_wait_for_when_no_job_runs(self) -> None:
        """Finished jobs are forgotten: wait returns at once."""
        jobs = Jobs(AsyncIOScheduler())

        async def job() -> None:
            return None

        await jobs.run(job)
        await asyncio.wait_for(jobs.wait(60), 1)

    async def test_a_job_that_finds_the_database_unreachable_backs_off(self) -> None:
        """Unavailable is no error to log: the job is skipped for a while, then tried
        again, and runs at every turn once it succeeds."""
        jobs = Jobs(AsyncIOScheduler())
        runs: list[bool] = []
        down = True

        async def job() -> None:
            runs.append(down)
            if down:
                raise Unavailable()

        await jobs.run(job)
        await jobs.run(job)  # backing off: not run
        assert runs == [True]
        await asyncio.sleep(BACKOFF_FIRST_S)  # the back-off itself is what is tested
        down = False
        await jobs.run(job)
        await jobs.run(job)
        assert runs == [True, False, False]
