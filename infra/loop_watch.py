"""Two figures of the process's responsiveness for /metrics: how late the event loop runs a
task due every 50 ms, and how long each garbage collection holds the process. While the
loop is held, every socket and request of the instance waits, so these are the first
place to look when answers are slow and the CPU is not busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

from prometheus_client import Histogram

SAMPLE_S = 0.05
"""How often the sampler asks to run."""
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Seconds, for the lag and the pauses alike."""


class LoopWatch:
    """Feeds the loop's lag and the collector's pauses (by generation) into histograms."""

    def __init__(self, lag: Histogram, pause: Histogram) -> None:
        self.lag = lag
        self._pauses = [pause.labels(str(generation)) for generation in range(3)]
        self._gc_started = 0.0

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Sample the loop and time the collector while the block runs."""
        gc.callbacks.append(self._on_gc)
        task = asyncio.create_task(self._sample(), name="loop-watch")
        try:
            yield
        finally:
            gc.callbacks.remove(self._on_gc)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + SAMPLE_S
            await asyncio.sleep(SAMPLE_S)
            self.lag.observe(max(0.0, loop.time() - due))

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Collections never nest, and the callbacks run on the thread that collects.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._pauses[info["generation"]].observe(time.perf_counter() - self._gc_started)
