"""What dispatch puts on the wire: requests and offers (the objects of docs/protocol.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from accounts.views import OrganizationView
from dispatch.models import InterpretationRequest, RequestState


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
    expires_at: datetime | None = None
    """When a request still waiting gives up (state `expired`)."""
    waves: int = 0
    """Waves of offers sent so far; more than one (or queued after one) means an earlier
    wave was declined or rang out."""


class RequestResponse(BaseModel):
    request: RequestView


class OfferView(BaseModel):
    id: str
    request_id: str
    language: str
    organization: OrganizationView
    expires_at: datetime
    preferences: PreferencesView


class TodayView(BaseModel):
    """An interpreter's calls that connected today (local time) and their time in calls."""

    calls: int
    talk_s: int
    """Whole seconds from connected to ended (to now for a call still running)."""


class TodayResponse(BaseModel):
    today: TodayView


def preferences_view(req: InterpretationRequest) -> PreferencesView:
    """The preferences as the counsellor gave them."""
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


def request_message(view: RequestView) -> dict[str, Any]:
    """The `request.updated` event."""
    return {"type": "request.updated", "request": view}


def offer_message(view: OfferView) -> dict[str, Any]:
    """The `offer` event."""
    return {"type": "offer", "offer": view}


def revoked_message(offer_id: str, reason: str) -> dict[str, Any]:
    """The `offer.revoked` event; reason is taken, cancelled or expired."""
    return {"type": "offer.revoked", "offer_id": offer_id, "reason": reason}
