"""The objects the socket's messages carry, and the states they name."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import BaseModel, Field

from accounts.views import OrganizationView

T = TypeVar("T")


def _absent(value: object) -> bool:
    return value is None


Omittable = Annotated[T | None, Field(exclude_if=_absent)]
"""A field left out of the message when it is None (rather than sent as null)."""


class Presence(StrEnum):
    """Whether an interpreter can take a call right now."""

    OFFLINE = "offline"
    AWAY = "away"
    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class IceServer(BaseModel):
    """One RTCIceServer: STUN as is, TURN with time-limited credentials."""

    urls: list[str]
    username: Omittable[str] = None
    credential: Omittable[str] = None


class LanguageFigures(BaseModel):
    """One roster language's live figures (without its names, which pages already have)."""

    tag: str
    online: int
    available: int
    queued: int
    eta_s: int | None


class RequestState(StrEnum):
    QUEUED = "queued"
    OFFERING = "offering"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


class BookingState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    STARTED = "started"
    CANCELLED = "cancelled"


class PreferencesView(BaseModel):
    gender: str | None = None
    specialization: str | None = None
    audio_only: bool = False
    required: bool = False
    """Whether gender and specialization are hard requirements rather than wishes."""


class RequestView(BaseModel):
    id: str
    language: str
    preferences: PreferencesView
    state: RequestState
    created_at: datetime
    updated_at: datetime
    queue_position: int | None = None
    eta_s: int | None = None
    call_id: str | None = None
    end_reason: str | None = None
    """Why it ended without a call: `cancelled` (by its counsellor), `max_wait` (state
    `expired`) or `deactivated` (state `cancelled`: an admin deactivated its counsellor or
    revoked its terminal)."""
    expires_at: datetime | None = None
    """When a request still waiting gives up (state `expired`)."""
    waves: int = 0
    """Waves of offers sent so far; more than one (or queued after one) means an earlier
    wave was declined or rang out."""
    room_id: Omittable[str] = None
    """The consultation room the interpreter is asked into."""
    tier: Omittable[str] = None
    """The farthest pool tier offered so far: `in_house` while colleagues in the house
    are asked first, `external` once it went (or escalated) to external interpreters."""


class OfferView(BaseModel):
    id: str
    request_id: str
    language: str
    organization: OrganizationView
    expires_at: datetime
    preferences: PreferencesView


class PartyView(BaseModel):
    id: str
    display_name: str | None
    """The person's name; for the interpreter null when the centre shows numbers instead."""
    agency: str | None = None
    """The interpreter's agency, shown to the counsellor during the call."""
    number: int | None = None
    """The interpreter's number, sent instead of the name when the centre says so."""


class CallView(BaseModel):
    id: str
    request_id: str
    language: str
    counsellor: PartyView
    interpreter: PartyView
    state: str
    created_at: datetime
    audio_only: bool = False
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    duration_s: int | None = None
    billable_s: int | None = None
    amount_cents: int | None = None
    currency: str | None = None
    room_id: Omittable[str] = None
    """The consultation room this call is an interpreter's segment of."""


class SitePlace(BaseModel):
    """A site as others than admins see it: which one, by name."""

    id: str
    name: str


class BookingView(BaseModel):
    """An appointment an interpreter is booked for, as its counsellor and interpreters see it."""

    id: str
    language: str
    preferences: PreferencesView
    state: BookingState
    local_start: str
    """The wall-clock start, `2026-03-29T10:30`, in `time_zone`."""
    time_zone: str
    starts_at: datetime
    duration_min: int
    organization: OrganizationView
    site: SitePlace | None
    """Where the appointment is (null for a booking made without a site)."""
    counsellor: PartyView
    interpreter: PartyView | None
    """Who claimed it; null while open, and for interpreters other than the one who did."""
    escalated: bool
    """Still unclaimed a set time before its start: shown to the admins and widened."""
    give_back_until: datetime | None
    """Until when the claiming interpreter may give it back (while claimed)."""
    request_id: str | None
    """The request made from it when the appointment started."""
    created_at: datetime
    updated_at: datetime
