"""Publishing dispatch's news after a commit, from the edge: presence changes go through
the roster's announcement, so the interpreter's tabs, the languages list and the presence
listeners all hear of them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from dispatch import service
from dispatch.news import News
from infra.bus import Bus
from infra.db import Database
from infra.metrics import Metrics
from interpreters.events import PresenceNews
from wire.objects import RequestView


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

    async def publish_opened(
        self, db: Database, opened: service.Opened, also: News | None = None
    ) -> RequestView:
        """After the commit: a new request's news sent (a room's request tells the room too,
        and `also` goes with it); the request as its counsellor sees it."""
        view, news = await service.announce_opened(db, opened)
        room_id = opened.request.room_id
        if room_id is not None:
            async with db.read() as session:
                await service.tell_room(session, room_id, news)
        if also is not None:
            news.extend(also)
        await self.publish(news)
        return view


PUBLISHER = web.AppKey("news_publisher", NewsPublisher)
