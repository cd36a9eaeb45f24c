"""Dispatch's reactions: a presence change offers queued work and moves ETAs, a user who
may no longer ask loses their waiting requests, and the scheduler's sweep applies due
deadlines."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from dispatch.announce import NewsPublisher
from dispatch.news import News
from dispatch.service import offer_queued_to, tell_queues_of, withdraw_requests_of
from dispatch.sweeper import sweep
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from infra.outages import Unavailable
from interpreters.models import Presence

log = structlog.get_logger(__name__)


async def offer_queued_on_presence(
    db: Database,
    clock: Clock,
    settings: Settings,
    publisher: NewsPublisher,
    interpreter_ids: Sequence[str],
    status: Presence,
) -> None:
    """A presence listener: whoever becomes available gets the oldest request they can serve.

    Any change of presence also changes the number of interpreters online, hence the
    expected waits of the queues the interpreters serve; their counsellors are told, once.
    """
    now = clock.now()
    news = News()
    # Only offering writes: telling the queues their new waits is a read, which on SQLite
    # need not queue for the write lock behind new requests.
    async with db.write() if status == Presence.AVAILABLE else db.read() as session:
        if status == Presence.AVAILABLE:
            for interpreter_id in interpreter_ids:
                news.extend(await offer_queued_to(session, interpreter_id, now, settings))
        await tell_queues_of(session, interpreter_ids, news)
    await publisher.publish(news)


async def withdraw_on_deactivation(
    db: Database,
    clock: Clock,
    settings: Settings,
    publisher: NewsPublisher,
    user_id: str,
) -> None:
    """A deactivation listener: the user's requests still waiting end at once, so that no
    interpreter is offered (or accepts) a call nobody will join."""
    async with db.write() as session:
        news = await withdraw_requests_of(session, user_id, clock.now(), settings)
    await publisher.publish(news)


async def sweep_due(
    db: Database, clock: Clock, settings: Settings, publisher: NewsPublisher
) -> None:
    """The scheduler's job: apply the deadlines due now."""
    try:
        await sweep(db, publisher, settings, clock.now())
    except Unavailable:
        raise  # the job backs off (see infra.jobs)
    except Exception:
        log.exception("sweep_failed")
