"""Publishing dispatch's news after a commit, from the edge: presence changes go through
the roster's announcement, so the interpreter's tabs, the languages list and the presence
listeners all hear of them."""

from __future__ import annotations

import functools

from aiohttp import web

from dispatch.news import News
from infra.appkeys import BUS
from interpreters.events import presence_changed


async def publish_news(app: web.Application, news: News) -> None:
    """Send what a committed transaction decided."""
    await news.publish(app[BUS], functools.partial(presence_changed, app))
