"""Dispatch's app-level reactions: a presence change offers queued work and moves ETAs, and
the scheduler's sweep applies due deadlines with the app's resources."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import structlog
from aiohttp import web

from dispatch.announce import publish_news
from dispatch.news import News
from dispatch.service import offer_queued_to, tell_queues_of
from dispatch.sweeper import sweep
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.metrics import METRICS
from infra.outages import Unavailable
from interpreters.events import presence_changed
from interpreters.models import Presence

log = structlog.get_logger(__name__)


async def offer_queued_on_presence(
    app: web.Application, interpreter_ids: Sequence[str], status: Presence
) -> None:
    """A presence listener: whoever becomes available gets the oldest request they can serve.

    Any change of presence also changes the number of interpreters online, hence the
    expected waits of the queues the interpreters serve; their counsellors are told, once.
    """
    now, db = app[CLOCK].now(), app[DATABASE]
    news = News()
    # Only offering writes: telling the queues their new waits is a read, which on SQLite
    # need not queue for the write lock behind new requests.
    async with db.write() if status == Presence.AVAILABLE else db.read() as session:
        if status == Presence.AVAILABLE:
            for interpreter_id in interpreter_ids:
                news.extend(await offer_queued_to(session, interpreter_id, now, app[SETTINGS]))
        await tell_queues_of(session, interpreter_ids, news)
    await publish_news(app, news)


async def sweep_app(app: web.Application) -> None:
    """The scheduler's job: sweep with the app's resources and clock."""
    try:
        await sweep(
            app[DATABASE],
            app[BUS],
            app[SETTINGS],
            app[CLOCK].now(),
            announce=functools.partial(presence_changed, app),
            metrics=app[METRICS],
        )
    except Unavailable:
        raise  # the job backs off (see infra.jobs)
    except Exception:
        log.exception("sweep_failed")
