"""Monthly summaries that keep the figures of months whose raw rows retention deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from infra.db import UTCDateTime


class RequestMonth(SQLModel, table=True):
    """Requests of one local month, language and organisation, summed from rows that are
    no longer read one by one (the month is sealed, or retention purged them). Waits are
    JSON objects of whole seconds to counts; the week-by-hour counts JSON lists of 168."""

    __tablename__ = "stats_request_month"

    month: str = Field(primary_key=True, max_length=7)
    """`YYYY-MM` in the centre's time zone (TOLK_TIMEZONE)."""
    language: str = Field(primary_key=True, max_length=35)
    organization_id: str = Field(primary_key=True, max_length=32)
    site_id: str = Field(default="", primary_key=True, max_length=32)
    """The requests' site ("" for none, and for what was summed before sites)."""
    requests: int = 0
    answered: int = 0
    within_30s: int = 0
    within_2min: int = 0
    within_5min: int = 0
    expired: int = 0
    cancelled: int = 0
    failed: int = 0
    accept_histogram: str = Field(default="{}", sa_column=Column(Text(), nullable=False))
    connect_histogram: str = Field(default="{}", sa_column=Column(Text(), nullable=False))
    demand_by_hour: str = Field(default="[]", sa_column=Column(Text(), nullable=False))
    unanswered_by_hour: str = Field(default="[]", sa_column=Column(Text(), nullable=False))


class InterpreterMonth(SQLModel, table=True):
    """An interpreter's month, summed like RequestMonth: online time (under
    organisation `""`: it belongs to no organisation) and, per organisation, calls, talk
    time and offers."""

    __tablename__ = "stats_interpreter_month"

    month: str = Field(primary_key=True, max_length=7)
    interpreter_id: str = Field(primary_key=True, max_length=32)
    organization_id: str = Field(primary_key=True, max_length=32)
    site_id: str = Field(default="", primary_key=True, max_length=32)
    """The calls' and offers' site ("" for none and for online time)."""
    online_s: float = 0.0
    talk_s: float = 0.0
    calls: int = 0
    offers: int = 0
    declined: int = 0
    rang_out: int = 0


class SealedMonth(SQLModel, table=True):
    """A local month whose rows are all in the summaries: the figures read it from there."""

    __tablename__ = "stats_sealed_month"

    month: str = Field(primary_key=True, max_length=7)
    sealed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
