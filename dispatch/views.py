"""Requests and offers as the wire shows them (`wire.objects`), built from their rows."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from accounts.views import OrganizationView
from dispatch.booking_models import Booking
from dispatch.models import InterpretationRequest, RequestState
from wire.objects import OfferView, PreferencesView, RequestView


class RequestResponse(BaseModel):
    request: RequestView


class TodayView(BaseModel):
    """An interpreter's calls that connected today (local time) and their time in calls."""

    calls: int
    talk_s: int
    """Whole seconds from connected to ended (to now for a call still running)."""


class TodayResponse(BaseModel):
    today: TodayView


def preferences_view(req: InterpretationRequest | Booking) -> PreferencesView:
    """The preferences as the counsellor gave them, for a request or a booking."""
    return PreferencesView(
        gender=req.gender,
        specialization=req.specialization,
        audio_only=req.audio_only,
        required=req.preferences_required,
    )


def request_view(
    req: InterpretationRequest, position: int | None = None, eta_s: int | None = None
) -> RequestView:
    """A request; position and ETA only while it is queued."""
    queued = req.state == RequestState.QUEUED
    waiting = req.state in (RequestState.QUEUED, RequestState.OFFERING)
    return RequestView(
        id=req.id,
        language=req.language,
        preferences=preferences_view(req),
        state=req.state,
        created_at=req.created_at,
        updated_at=req.updated_at,
        queue_position=position if queued else None,
        eta_s=eta_s if queued else None,
        call_id=req.call_id,
        end_reason=req.end_reason,
        expires_at=req.expires_at if waiting else None,
        waves=req.waves,
        room_id=req.room_id,
        tier=req.tier,
    )


def offer_view(
    offer_id: str, expires_at: datetime, req: InterpretationRequest, organization: OrganizationView
) -> OfferView:
    """An offer as the interpreter's page shows it."""
    return OfferView(
        id=offer_id,
        request_id=req.id,
        language=req.language,
        organization=organization,
        expires_at=expires_at,
        preferences=preferences_view(req),
    )
