"""App keys of the roster: the announcer of presence changes and the queue figures provider.

The roster sits below dispatch, so it cannot call dispatch; the composition root hands
it these instead (dispatch offers queued requests to whoever became available, as a
listener of the announcer, and fills in `queued` and `eta_s` of GET /api/languages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from interpreters.events import PresenceNews

QueueFigures = Callable[[AsyncSession, datetime], Awaitable[dict[str, tuple[int, int | None]]]]
"""Returns {language tag: (requests queued, expected wait in seconds or None)}."""

PRESENCE_NEWS = web.AppKey("presence_news", PresenceNews)
QUEUE_FIGURES: web.AppKey[QueueFigures] = web.AppKey("queue_figures")
