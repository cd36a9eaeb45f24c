"""Dispatch's reactions to the roster: a presence change offers queued work and moves ETAs."""

from __future__ import annotations

from aiohttp import web

from dispatch.announce import publish_news
from dispatch.news import News
from dispatch.service import offer_queued_to, tell_queues_of
from infra.appkeys import CLOCK, DATABASE, SETTINGS
from interpreters.models import Presence


async def offer_queued_on_presence(
    app: web.Application, interpreter_id: str, status: Presence
) -> None:
    """A presence listener: whoever becomes available gets the oldest request they can serve.

    Any change of presence also changes the number of interpreters online, hence the
    expected waits of the queues the interpreter serves; their counsellors are told.
    """
    now = app[CLOCK].now()
    news = News()
    async with app[DATABASE].write() as session:
        if status == Presence.AVAILABLE:
            news.extend(await offer_queued_to(session, interpreter_id, now, app[SETTINGS]))
        await tell_queues_of(session, interpreter_id, news)
    await publish_news(app, news)
