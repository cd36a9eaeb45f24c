"""The current dispatch state of a user, sent on every (re)connect of a socket.

The bus drops news while a socket is away, so each new socket gets from the database:
a counsellor their open requests, an interpreter their pending offers. (Live calls are
sent by the call rooms' own on-connect hook.) A socket that stayed open through a gap in
the bus also gets what ended meanwhile (`changed_since`), since its page still shows it.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import REQUESTERS, Organization, Role
from accounts.views import OrganizationView
from calls.models import Call, CallState
from calls.views import load_call_view
from dispatch.models import PENDING_OFFER, InterpretationRequest, Offer, OfferState, RequestState
from dispatch.queue import current_view
from dispatch.service import OPEN
from dispatch.views import offer_view, request_view
from interpreters.models import Interpreter
from wire.server import (
    CallUpdated,
    OfferMade,
    OfferRevocation,
    PresenceUpdated,
    RequestUpdated,
    ServerMessage,
)


async def current_state(
    session: AsyncSession, user_id: str, role: Role, now: datetime
) -> list[ServerMessage]:
    """The messages that bring a freshly connected socket up to date."""
    messages: list[ServerMessage] = []
    if role in REQUESTERS:
        requests = await session.exec(
            select(InterpretationRequest)
            .where(col(InterpretationRequest.counsellor_id) == user_id)
            .where(col(InterpretationRequest.state).in_([s.value for s in OPEN]))
            .order_by(col(InterpretationRequest.created_at))
        )
        for req in requests:
            messages.append(RequestUpdated(request=await current_view(session, req)))
    elif role == Role.INTERPRETER:
        offers = await session.exec(
            select(Offer, InterpretationRequest, Organization)
            .join(InterpretationRequest, col(InterpretationRequest.id) == col(Offer.request_id))
            .join(Organization, col(Organization.id) == col(InterpretationRequest.organization_id))
            .where(col(Offer.interpreter_id) == user_id)
            .where(PENDING_OFFER)
            .where(col(Offer.expires_at) > now)
        )
        for offer, req, org in offers:
            organization = OrganizationView(id=org.id, name=org.name)
            view = offer_view(offer.id, offer.expires_at, req, organization)
            messages.append(OfferMade(offer=view))
    return messages


async def changed_since(
    session: AsyncSession, user_id: str, role: Role, since: datetime
) -> list[ServerMessage]:
    """What ended for a user since `since` (requests, offers, calls), and an interpreter's
    status: the news a socket that stayed open may have missed in a gap of the bus, which
    `current_state` (only what is open) does not repeat."""
    messages: list[ServerMessage] = []
    if role in REQUESTERS:
        requests = await session.exec(
            select(InterpretationRequest)
            .where(col(InterpretationRequest.counsellor_id) == user_id)
            .where(col(InterpretationRequest.updated_at) >= since)
            # An accepted request lives on as its call, which comes as call.updated.
            .where(
                col(InterpretationRequest.state).not_in(
                    [*(s.value for s in OPEN), RequestState.ACCEPTED.value]
                )
            )
            .order_by(col(InterpretationRequest.updated_at))
        )
        messages.extend(RequestUpdated(request=request_view(req)) for req in requests)
    elif role == Role.INTERPRETER:
        offers = await session.exec(
            select(Offer)
            .where(col(Offer.interpreter_id) == user_id)
            .where(col(Offer.decided_at) >= since)
            .where(col(Offer.state).in_([OfferState.EXPIRED.value, OfferState.REVOKED.value]))
        )
        messages.extend(
            OfferRevocation(offer_id=o.id, reason=o.reason or "expired") for o in offers
        )
        status = await session.exec(
            select(Interpreter.status).where(col(Interpreter.user_id) == user_id)
        )
        for value in status:
            messages.append(PresenceUpdated(status=value))
    ended = await session.exec(
        select(Call)
        .where(or_(col(Call.counsellor_id) == user_id, col(Call.interpreter_id) == user_id))
        .where(col(Call.state) == CallState.ENDED.value)
        .where(col(Call.ended_at) >= since)
    )
    for call in ended.all():
        messages.append(CallUpdated(call=await load_call_view(session, call)))
    return messages
