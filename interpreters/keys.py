"""App keys of the roster: listeners of presence changes and the queue figures provider.

The roster sits below dispatch, so it cannot call dispatch; the composition root hands
it these callables instead (dispatch offers queued requests to whoever became available,
and fills in `queued` and `eta_s` of GET /api/languages).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from interpreters.live import LanguageBroadcaster
from interpreters.models import Presence

PresenceListener = Callable[[web.Application, Sequence[str], Presence], Awaitable[None]]
"""Called with (app, interpreter ids, their new status) after a presence change was
committed: one interpreter's click, or a sweep that set many offline at once."""

QueueFigures = Callable[[AsyncSession, datetime], Awaitable[dict[str, tuple[int, int | None]]]]
"""Returns {language tag: (requests queued, expected wait in seconds or None)}."""


PRESENCE_LISTENERS = web.AppKey("presence_listeners", list[PresenceListener])
QUEUE_FIGURES: web.AppKey[QueueFigures] = web.AppKey("queue_figures")

LANGUAGE_BROADCASTER = web.AppKey("language_broadcaster", LanguageBroadcaster)
