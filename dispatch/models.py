"""Tables of dispatch: requests, offers and per-language queue statistics.

Every state change is a guarded UPDATE (`... WHERE state = 'offering'`) checked by row
count; the partial unique indexes below make double-booking impossible even for buggy code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ColumnElement, Index, String, literal_column
from sqlmodel import Field, SQLModel, col

from infra.db import UTCDateTime
from infra.ids import new_id
from infra.indexes import partial_index
from wire.objects import RequestState as RequestState  # on the wire as in the table


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REVOKED = "revoked"


class InterpretationRequest(SQLModel, table=True):
    """A counsellor's request for an interpreter of one language."""

    __tablename__ = "interpretation_request"
    __table_args__ = (
        Index("ix_request_open_language", "state", "language", "created_at"),
        # The statistics read a period of requests, of everyone or of one organisation.
        Index("ix_request_created_at", "created_at"),
        Index("ix_request_organization_created", "organization_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    counsellor_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    organization_id: str = Field(foreign_key="organization.id", max_length=32)
    """The counsellor's organisation when asking: who is billed."""
    language: str = Field(max_length=35)
    gender: str | None = Field(default=None, max_length=20)
    specialization: str | None = Field(default=None, max_length=50)
    preferences_required: bool = False
    audio_only: bool = False
    state: RequestState = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    relax_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    wave_deadline: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    waves: int = 0
    tier: str | None = Field(default=None, max_length=20)
    """The farthest pool tier the request was offered to (`in_house`, `external`)."""
    call_id: str | None = Field(default=None, max_length=32)
    end_reason: str | None = Field(default=None, max_length=30)
    room_id: str | None = Field(default=None, max_length=32, index=True)
    """The consultation room the interpreter is asked into, if any."""
    site_id: str | None = Field(default=None, max_length=32, index=True)
    """The counsellor's site when they asked (a room's request: the room's)."""


class Offer(SQLModel, table=True):
    """One interpreter being offered one request, until a deadline."""

    __tablename__ = "offer"
    __table_args__ = (
        partial_index("uq_offer_pending_interpreter", "interpreter_id", "state = 'pending'"),
        Index("ix_offer_created_at", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    request_id: str = Field(foreign_key="interpretation_request.id", index=True, max_length=32)
    interpreter_id: str = Field(foreign_key="interpreter.user_id", index=True, max_length=32)
    state: OfferState = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    reason: str | None = Field(default=None, max_length=30)


# The states that the partial indexes above are about, written into the SQL rather than
# bound: SQLite compiles a statement again at every run when a bound value decides whether
# a partial index applies, and PostgreSQL's generic plan of a prepared statement cannot use
# such an index at all (it reads every offer or call the person ever had instead).
PENDING_OFFER: ColumnElement[bool] = col(Offer.state) == literal_column(f"'{OfferState.PENDING}'")
"""`offer.state = 'pending'`, as the index of pending offers is defined."""


class LanguageQueueStats(SQLModel, table=True):
    """Exponential averages per language, for the expected wait shown to counsellors."""

    __tablename__ = "language_queue_stats"

    language: str = Field(primary_key=True, max_length=35)
    avg_wait_s: float = 0.0
    avg_handle_s: float = 0.0
    samples: int = 0
