"""The waiting queue per language: positions, the expected wait, and its statistics.

Estimate: per language we keep an exponential average of observed waits (creation to
acceptance), new = (3 * old + sample) / 4 as Asterisk's app_queue does. A request at
position p, with n interpreters of the language online (available, busy or in wrap-up),
expects to wait about avg * p / n seconds (rounded up). No estimate (null) before the
first observed wait or while nobody of the language is online.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime

from sqlalchemy import case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.candidates import serving_ranks
from dispatch.models import InterpretationRequest, LanguageQueueStats, RequestState
from dispatch.news import News
from dispatch.views import request_view
from infra.db import conflict_insert, dialect_of, run_on
from interpreters.models import Interpreter, InterpreterLanguage, Presence
from wire.objects import RequestView
from wire.server import RequestUpdated

ONLINE = (Presence.AVAILABLE.value, Presence.BUSY.value, Presence.WRAP_UP.value)


def estimate_wait(avg_wait_s: float | None, position: int, online: int) -> int | None:
    """Expected seconds until a request at `position` is accepted (see the module doc)."""
    if avg_wait_s is None or online <= 0:
        return None
    return math.ceil(avg_wait_s * position / online)


async def average_wait(session: AsyncSession, language: str) -> float | None:
    """The exponential average of observed waits for a language; None before any sample."""
    stats = await session.get(LanguageQueueStats, language)
    return stats.avg_wait_s if stats is not None and stats.samples > 0 else None


async def online_count(session: AsyncSession, language: str) -> int:
    """Interpreters online who can serve the language (by the variant rule)."""
    tags = list(await run_on(session, serving_ranks, language))
    if not tags:
        return 0
    result = await session.exec(
        select(func.count(func.distinct(InterpreterLanguage.interpreter_id)))
        .join(Interpreter, col(Interpreter.user_id) == col(InterpreterLanguage.interpreter_id))
        .where(col(InterpreterLanguage.tag).in_(tags))
        .where(col(Interpreter.status).in_(ONLINE))
        .where(col(Interpreter.active).is_(True))
    )
    return int(result.one())


async def queued_requests(session: AsyncSession, language: str) -> list[InterpretationRequest]:
    """The queue of one language, oldest first."""
    rows = await session.exec(
        select(InterpretationRequest)
        .where(col(InterpretationRequest.state) == RequestState.QUEUED.value)
        .where(col(InterpretationRequest.language) == language)
        .order_by(col(InterpretationRequest.created_at), col(InterpretationRequest.id))
    )
    return list(rows)


async def queue_views(
    session: AsyncSession, language: str, queue: list[InterpretationRequest] | None = None
) -> list[RequestView]:
    """Views of every queued request of a language, with position and expected wait."""
    queue = await queued_requests(session, language) if queue is None else queue
    if not queue:
        return []
    avg = await average_wait(session, language)
    online = await online_count(session, language)
    return [
        request_view(req, position, estimate_wait(avg, position, online))
        for position, req in enumerate(queue, start=1)
    ]


async def current_view(session: AsyncSession, req: InterpretationRequest) -> RequestView:
    """One request's view, with its queue position and expected wait when queued."""
    if req.state != RequestState.QUEUED:
        return request_view(req)
    for view in await queue_views(session, req.language):
        if view.id == req.id:
            return view
    return request_view(req)


async def tell_queue(session: AsyncSession, languages: set[str], news: News) -> None:
    """Tell every counsellor waiting in these languages' queues their position and ETA."""
    for language in sorted(languages):
        queue = await queued_requests(session, language)
        views = await queue_views(session, language, queue)
        for req, view in zip(queue, views, strict=True):
            news.tell(req.counsellor_id, RequestUpdated(request=view))


async def record_wait(session: AsyncSession, language: str, wait_s: float) -> None:
    """Fold one observed wait into the language's exponential average (one atomic UPDATE)."""
    await session.exec(
        conflict_insert(LanguageQueueStats, dialect_of(session))
        .values(language=language, avg_wait_s=0.0, avg_handle_s=0.0, samples=0)
        .on_conflict_do_nothing()
    )
    avg = col(LanguageQueueStats.avg_wait_s)
    await session.exec(
        update(LanguageQueueStats)
        .where(col(LanguageQueueStats.language) == language)
        .values(
            avg_wait_s=case(
                (col(LanguageQueueStats.samples) == 0, wait_s), else_=(3 * avg + wait_s) / 4
            ),
            samples=col(LanguageQueueStats.samples) + 1,
        )
        .execution_options(synchronize_session=False)
    )


async def queue_figures(session: AsyncSession, _now: datetime) -> dict[str, tuple[int, int | None]]:
    """{language: (requests queued, expected wait of a request made now)} for GET /api/languages."""
    rows = await session.exec(
        select(InterpretationRequest.language, func.count())
        .where(col(InterpretationRequest.state) == RequestState.QUEUED.value)
        .group_by(col(InterpretationRequest.language))
    )
    counts: dict[str, int] = defaultdict(int)
    for language, count in rows:
        counts[language] += int(count)
    figures: dict[str, tuple[int, int | None]] = {}
    for language, count in counts.items():
        avg = await average_wait(session, language)
        online = await online_count(session, language)
        figures[language] = (count, estimate_wait(avg, count + 1, online))
    return figures
