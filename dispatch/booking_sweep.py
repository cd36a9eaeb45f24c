"""The deadlines of bookings: reminders before the appointment, and the escalation of a
booking still unclaimed a set time before it (`TOLK_BOOKING_ESCALATE_BEFORE_S`).

A job runs `sweep_bookings` every sweep interval on every instance. Each due booking is
handled in its own short transaction by a conditional UPDATE (`reminders_sent` from what
was read, `escalated_at` still empty), so two instances sweeping at once send each
reminder and each escalation once: the one whose UPDATE moved the row tells. Tests call
`sweep_bookings` with a ManualClock time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlmodel import col, select

from dispatch.announce import NewsPublisher
from dispatch.booking_models import Booking, BookingState
from dispatch.booking_rules import reminders_due
from dispatch.bookings import LIVE, guarded, tell
from dispatch.news import News
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from infra.outages import Unavailable

log = structlog.get_logger(__name__)

BATCH = 200


async def sweep_bookings(db: Database, settings: Settings, now: datetime) -> News:
    """Escalate and remind what is due at `now`; returns the news to publish."""
    news = News()
    for booking_id in await _due_escalations(db, settings, now):
        news.extend(await _escalate(db, booking_id, now, settings))
    for booking_id, sent in await _due_reminders(db, settings, now):
        news.extend(await _remind(db, booking_id, sent, now, settings))
    return news


async def _due_escalations(db: Database, settings: Settings, now: datetime) -> list[str]:
    horizon = now + timedelta(seconds=settings.booking_escalate_before_s)
    async with db.read() as session:
        rows = await session.exec(
            select(Booking.id)
            .where(col(Booking.state) == BookingState.OPEN.value)
            .where(col(Booking.starts_at) <= horizon)
            .where(col(Booking.starts_at) > now)
            .where(col(Booking.escalated_at).is_(None))
            .order_by(col(Booking.starts_at))
            .limit(BATCH)
        )
        return list(rows)


async def _escalate(db: Database, booking_id: str, now: datetime, settings: Settings) -> News:
    """Mark the booking escalated (once) and tell its counsellor, the admins and everyone
    who may claim it now that it is widened."""
    async with db.write() as session:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            return News()
        still_open = col(Booking.state) == BookingState.OPEN.value
        once = col(Booking.escalated_at).is_(None)
        if not await guarded(session, booking, still_open, once, escalated_at=now, updated_at=now):
            return News()
        log.info("booking_escalated", booking_id=booking_id, language=booking.language)
        return await tell(session, booking, "escalated", settings, seekers=True)


async def _due_reminders(db: Database, settings: Settings, now: datetime) -> list[tuple[str, int]]:
    reminders = settings.booking_reminders_s
    if not reminders:
        return []
    horizon = now + timedelta(seconds=max(reminders))
    async with db.read() as session:
        rows = await session.exec(
            select(Booking)
            .where(col(Booking.state).in_([s.value for s in LIVE]))
            .where(col(Booking.starts_at) <= horizon)
            .where(col(Booking.starts_at) > now)
            .where(col(Booking.reminders_sent) < len(reminders))
            .order_by(col(Booking.starts_at))
            .limit(BATCH)
        )
        return [
            (b.id, b.reminders_sent)
            for b in rows
            if reminders_due(b.starts_at, b.reminders_sent, reminders, now) > b.reminders_sent
        ]


async def _remind(
    db: Database, booking_id: str, sent: int, now: datetime, settings: Settings
) -> News:
    """Count the reminder as sent (once) and remind the counsellor and the interpreter."""
    async with db.write() as session:
        booking = await session.get(Booking, booking_id)
        if booking is None:
            return News()
        due = reminders_due(booking.starts_at, sent, settings.booking_reminders_s, now)
        if not await guarded(
            session, booking, col(Booking.reminders_sent) == sent, reminders_sent=due
        ):
            return News()
        return await tell(session, booking, "reminder", settings)


async def sweep_bookings_due(
    db: Database, clock: Clock, settings: Settings, publisher: NewsPublisher
) -> None:
    """The scheduler's job: apply the bookings' deadlines due now and publish the news."""
    try:
        news = await sweep_bookings(db, settings, clock.now())
    except Unavailable:
        raise  # the job backs off (see infra.jobs)
    except Exception:
        log.exception("booking_sweep_failed")
        return
    await publisher.publish(news)
