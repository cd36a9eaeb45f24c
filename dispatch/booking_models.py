"""The booking table: an interpreter booked ahead for an appointment at a set time.

A booking is `open` until an interpreter claims it (`claimed`), and `started` once its
counsellor made the request of the appointment; `cancelled` ends it. Every change is a
guarded UPDATE checked by row count, as requests and offers are (`dispatch.bookings`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from infra.db import UTCDateTime
from infra.ids import new_id
from wire.objects import BookingState as BookingState  # on the wire as in the table


class Booking(SQLModel, table=True):
    """A counsellor's appointment for which an interpreter of one language is booked."""

    __tablename__ = "booking"
    __table_args__ = (
        # The open bookings an interpreter may claim, and the due reminders and escalations.
        Index("ix_booking_state_starts", "state", "starts_at"),
        Index("ix_booking_counsellor_starts", "counsellor_id", "starts_at"),
        Index("ix_booking_interpreter_starts", "interpreter_id", "starts_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    counsellor_id: str = Field(foreign_key="user_account.id", max_length=32)
    organization_id: str = Field(foreign_key="organization.id", max_length=32)
    """The counsellor's organisation when booking: who is billed for the call."""
    site_id: str | None = Field(default=None, max_length=32)
    """Where the appointment is: a site of the organisation, whose time zone it keeps."""
    language: str = Field(max_length=35)
    gender: str | None = Field(default=None, max_length=20)
    specialization: str | None = Field(default=None, max_length=50)
    preferences_required: bool = False
    audio_only: bool = False
    local_start: str = Field(max_length=16)
    """The wall-clock start as the counsellor wrote it, `2026-03-29T10:30`, in `time_zone`."""
    time_zone: str = Field(max_length=64)
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    """The start as an instant (UTC), from `local_start` in `time_zone`."""
    duration_min: int
    state: BookingState = Field(sa_column=Column(String(20), nullable=False))
    interpreter_id: str | None = Field(
        default=None, foreign_key="interpreter.user_id", max_length=32
    )
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    escalated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    """When the booking, still unclaimed, was shown to the admins and widened."""
    reminders_sent: int = 0
    """How many of the reminders (`TOLK_BOOKING_REMINDERS_S`, earliest first) went out."""
    request_id: str | None = Field(default=None, max_length=32)
    """The request made when the counsellor started the appointment (the latest one)."""
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
