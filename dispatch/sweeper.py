"""The sweeper: applies the deadlines stored in rows (offer waves, preference relaxation,
request expiry, end of wrap-up).

APScheduler runs `sweep` every `sweep_interval_s` on every instance. Each due row is
claimed in its own short transaction with FOR UPDATE SKIP LOCKED (PostgreSQL), so
instances share the work instead of doing it twice, and the transitions are the same
guarded UPDATEs that accept and cancel use, so a race ends in exactly one outcome. Tests
call `sweep` directly with a ManualClock time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Mapped
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from dispatch.announce import NewsPublisher
from dispatch.models import InterpretationRequest, OfferState, RequestState
from dispatch.news import News
from dispatch.service import (
    OPEN,
    claim_request,
    close_pending_offers,
    close_request,
    move_request,
    offer_queued_to,
    offer_queued_to_each,
    send_next_wave,
)
from infra.config import Settings
from infra.counters import add_one
from infra.db import Database
from infra.outages import Unavailable
from interpreters.models import Interpreter, Presence
from interpreters.presence import transition
from wire.server import OfferRevocation

log = structlog.get_logger(__name__)

BATCH = 200
"""Due rows handled per kind and sweep; the rest wait for the next sweep."""

Step = Callable[[AsyncSession, str, datetime, Settings], Awaitable[News]]


@dataclass(frozen=True, slots=True)
class _Deadline:
    """A deadline stored in request rows, and the states in which it counts."""

    column: Mapped[datetime | None]
    states: tuple[RequestState, ...]

    def due(self, now: datetime) -> tuple[ColumnElement[bool], ...]:
        """The conditions of a row whose deadline is due: what the sweep looks for and
        what a step claims again, in its own transaction."""
        state = col(InterpretationRequest.state)
        in_state = (
            state == self.states[0].value
            if len(self.states) == 1
            else state.in_([s.value for s in self.states])
        )
        return in_state, self.column <= now


_EXPIRY = _Deadline(col(InterpretationRequest.expires_at), OPEN)
_WAVE_END = _Deadline(col(InterpretationRequest.wave_deadline), (RequestState.OFFERING,))
_RELAXING = _Deadline(col(InterpretationRequest.relax_at), OPEN)


async def _expire_request(
    session: AsyncSession, request_id: str, now: datetime, settings: Settings
) -> News:
    req = await claim_request(session, request_id, *_EXPIRY.due(now))
    if req is None:
        return News()
    news = await close_request(
        session, req, RequestState.EXPIRED, "max_wait", "expired", now, settings
    )
    log.info("request_expired", request_id=req.id, language=req.language)
    return news or News()


async def _end_wave(
    session: AsyncSession, request_id: str, now: datetime, settings: Settings
) -> News:
    news = News()
    req = await claim_request(session, request_id, *_WAVE_END.due(now))
    if req is None:
        return news
    missed = await close_pending_offers(session, req.id, OfferState.EXPIRED, "expired", now)
    news.count("offer", "expired", len(missed))
    for offer_id, interpreter_id in missed:
        news.tell(interpreter_id, OfferRevocation(offer_id=offer_id, reason="expired"))
    for interpreter_id in sorted({i for _, i in missed}):
        await _count_miss(session, interpreter_id, now, settings, news)
    await send_next_wave(session, req, now, settings, news)
    # Who missed this request but is still available may serve an older queued one.
    await offer_queued_to_each(session, [i for _, i in missed], now, settings, news)
    return news


async def _count_miss(
    session: AsyncSession, interpreter_id: str, now: datetime, settings: Settings, news: News
) -> None:
    """One more offer missed in a row; after K of them the interpreter is set away."""
    count = await add_one(
        session, col(Interpreter.missed_offers), col(Interpreter.user_id) == interpreter_id
    )
    if count is None or count < settings.missed_offers_before_away:
        return
    if await transition(
        session,
        interpreter_id,
        from_statuses=frozenset({Presence.AVAILABLE}),
        to=Presence.AWAY,
        now=now,
    ):
        news.presence_changed(interpreter_id, Presence.AWAY, "missed_offers")
        log.info("interpreter_auto_away", interpreter_id=interpreter_id, missed=count)


async def _relax(session: AsyncSession, request_id: str, now: datetime, settings: Settings) -> News:
    news = News()
    req = await claim_request(session, request_id, *_RELAXING.due(now))
    if req is None:
        return news
    await move_request(session, req, OPEN, relax_at=None, updated_at=now)
    log.info("preferences_relaxed", request_id=req.id)
    # A queued request now has everyone of the language as candidates; an offering one
    # widens from its next wave on.
    if req.state == RequestState.QUEUED:
        await send_next_wave(session, req, now, settings, news)
    return news


async def _end_wrap_up(
    session: AsyncSession, interpreter_id: str, now: datetime, settings: Settings
) -> News:
    news = News()
    moved = await transition(
        session,
        interpreter_id,
        from_statuses=frozenset({Presence.WRAP_UP}),
        to=Presence.AVAILABLE,
        now=now,
        wrap_up_until=None,
    )
    # A wrap-up skipped or extended meanwhile leaves the row alone.
    if not moved:
        return news
    news.presence_changed(interpreter_id, Presence.AVAILABLE, "wrap_up_ended")
    news.extend(await offer_queued_to(session, interpreter_id, now, settings))
    return news


def _due_requests(deadline: _Deadline, now: datetime) -> SelectOfScalar[str]:
    return (
        select(InterpretationRequest.id)
        .where(*deadline.due(now))
        .order_by(deadline.column)
        .limit(BATCH)
    )


def _due_wrap_ups(now: datetime) -> SelectOfScalar[str]:
    return (
        select(Interpreter.user_id)
        .where(col(Interpreter.status) == Presence.WRAP_UP.value)
        .where(col(Interpreter.wrap_up_until) <= now)
        .order_by(col(Interpreter.wrap_up_until))
        .limit(BATCH)
    )


_REQUEST_STEPS: tuple[tuple[Step, _Deadline], ...] = (
    (_expire_request, _EXPIRY),
    (_end_wave, _WAVE_END),
    (_relax, _RELAXING),
)


async def _due_work(db: Database, now: datetime) -> list[tuple[Step, list[str]]]:
    """Every kind of due row, looked up in one read transaction: an idle instance sweeps
    every second, and each transaction costs round trips to the database (on PostgreSQL,
    BEGIN and ROLLBACK besides the statements)."""
    queries = [(step, _due_requests(deadline, now)) for step, deadline in _REQUEST_STEPS]
    # Wrap-up ends after the request work, so a freed interpreter takes the oldest request.
    queries.append((_end_wrap_up, _due_wrap_ups(now)))
    async with db.read() as session:
        return [(step, list(await session.exec(stmt))) for step, stmt in queries]


async def sweep(db: Database, publisher: NewsPublisher, settings: Settings, now: datetime) -> int:
    """Apply every deadline due at `now`; returns how many rows were looked at. What each
    row's transaction decided is published after its commit."""
    handled = 0
    for step, ids in await _due_work(db, now):
        for row_id in ids:
            handled += await _apply(db, publisher, step, row_id, now, settings)
    return handled


async def _apply(
    db: Database,
    publisher: NewsPublisher,
    step: Step,
    row_id: str,
    now: datetime,
    settings: Settings,
) -> int:
    """One due row in its own transaction; a failure is logged and retried next sweep."""
    try:
        async with db.write() as session:
            news = await step(session, row_id, now, settings)
    except Unavailable:
        raise  # the job backs off; no row is at fault
    except Exception:
        log.exception("sweep_step_failed", step=step.__name__, row_id=row_id)
        return 0
    await publisher.publish(news)
    return 1
