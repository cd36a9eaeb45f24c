"""What dispatch puts on the wire: requests, offers and calls (the objects of docs/protocol.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import User
from accounts.views import OrganizationView
from dispatch.models import Call, InterpretationRequest, RequestState
from interpreters.models import Interpreter, ShownAs
from interpreters.naming import roster_setting


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


class CallResponse(BaseModel):
    call: CallView


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


def call_view(
    call: Call,
    counsellor: User,
    interpreter: User,
    *,
    profile: Interpreter | None = None,
    shown_as: ShownAs = ShownAs.NAME,
    **billing: Any,
) -> CallView:
    """A call as both participants see it; billing adds its figures as keywords once ended.
    The interpreter is named by name or by number, as the centre's setting says."""
    duration = None
    if call.connected_at is not None and call.ended_at is not None:
        duration = max(0, int((call.ended_at - call.connected_at).total_seconds()))
    by_name = shown_as == ShownAs.NAME
    return CallView(
        id=call.id,
        request_id=call.request_id,
        language=call.language,
        counsellor=PartyView(id=counsellor.id, display_name=counsellor.display_name),
        interpreter=PartyView(
            id=interpreter.id,
            display_name=interpreter.display_name if by_name else None,
            agency=profile.agency if profile else None,
            number=None if by_name or profile is None else profile.number,
        ),
        state=call.state,
        created_at=call.created_at,
        audio_only=call.audio_only,
        connected_at=call.connected_at,
        ended_at=call.ended_at,
        end_reason=call.end_reason,
        duration_s=duration,
        **billing,
    )


async def load_call_view(session: AsyncSession, call: Call, **billing: Any) -> CallView:
    """The view of a call, reading its two participants' names, the interpreter's agency
    and number, and whether the centre names interpreters by name or number."""
    users = await session.exec(
        select(User).where(col(User.id).in_([call.counsellor_id, call.interpreter_id]))
    )
    by_id = {u.id: u for u in users}
    profile = await session.get(Interpreter, call.interpreter_id)
    setting = await roster_setting(session)
    return call_view(
        call,
        by_id[call.counsellor_id],
        by_id[call.interpreter_id],
        profile=profile,
        shown_as=setting.interpreter_shown_as,
        **billing,
    )


def call_message(view: CallView) -> dict[str, Any]:
    """The `call.updated` event."""
    return {"type": "call.updated", "call": view}


def request_message(view: RequestView) -> dict[str, Any]:
    """The `request.updated` event."""
    return {"type": "request.updated", "request": view}


def offer_message(view: OfferView) -> dict[str, Any]:
    """The `offer` event."""
    return {"type": "offer", "offer": view}


def revoked_message(offer_id: str, reason: str) -> dict[str, Any]:
    """The `offer.revoked` event; reason is taken, cancelled or expired."""
    return {"type": "offer.revoked", "offer_id": offer_id, "reason": reason}
