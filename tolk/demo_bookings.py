"""The demo's booked appointments: one claimed by a demo interpreter, one still open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import func, select

from accounts import service
from dispatch.booking_models import Booking, BookingState
from dispatch.booking_time import booked_time
from infra.db import Database
from infra.ids import new_id


@dataclass(frozen=True)
class DemoBooking:
    counsellor: str
    language: str
    days_ahead: int
    at: time
    duration_min: int
    interpreter: str | None


BOOKINGS = (
    DemoBooking("berater.jobcenter", "ar", 1, time(10, 0), 60, "layla"),
    DemoBooking("berater.sozialamt", "fa-AF", 2, time(14, 0), 45, None),
)


async def seed_bookings(db: Database, now: datetime, zone: ZoneInfo) -> None:
    """The demo's bookings, made once: when there is any booking, nothing is added."""
    async with db.write() as session:
        if (await session.exec(select(func.count()).select_from(Booking))).one():
            return
        today = now.astimezone(zone).date()
        for demo in BOOKINGS:
            counsellor = await service.find_user(session, demo.counsellor)
            assert counsellor is not None
            interpreter = (
                await service.find_user(session, demo.interpreter) if demo.interpreter else None
            )
            local = datetime.combine(today + timedelta(days=demo.days_ahead), demo.at)
            start = booked_time(local, zone.key)
            session.add(
                Booking(
                    id=new_id(),
                    counsellor_id=counsellor.id,
                    organization_id=counsellor.organization_id,
                    language=demo.language,
                    **start.columns(),
                    duration_min=demo.duration_min,
                    state=BookingState.CLAIMED if interpreter else BookingState.OPEN,
                    interpreter_id=interpreter.id if interpreter else None,
                    claimed_at=now if interpreter else None,
                    created_at=now,
                    updated_at=now,
                )
            )
