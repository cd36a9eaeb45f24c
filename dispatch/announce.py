"""Publishing dispatch's news after a commit, from the edge: presence changes go through
the roster's announcement, so the interpreter's tabs, the languages list and the presence
listeners all hear of them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from dispatch.news import News
from infra.bus import Bus
from infra.metrics import Metrics
from interpreters.events import PresenceNews


@dataclass(frozen=True)
class NewsPublisher:
    """Sends what committed transactions decided: messages to users' sockets, presence
    changes through the roster's announcer, and the figures to the metrics."""

    bus: Bus
    presence: PresenceNews
    metrics: Metrics

    async def publish(self, news: News) -> None:
        """Send the news. With the in-process bus the frames leave before the caller goes on
        (to write its HTTP response, say)."""
        await news.publish(self.bus, self.presence.changed, self.metrics)
        # A socket writes what it is sent once per turn of the loop (the hub batches frames):
        # handing the loop one turn here puts an offer on the wire before the counsellor's
        # response is serialised and written: about 0.4 ms sooner
        # (bench/results/dispatch_latency.md).
        await asyncio.sleep(0)


PUBLISHER = web.AppKey("news_publisher", NewsPublisher)
