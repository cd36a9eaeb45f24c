"""The current dispatch state of a user, sent on every (re)connect of a socket.

The bus drops news while a socket is away, so each new socket gets from the database:
a counsellor their open requests, an interpreter their pending offers. (Live calls are
sent by the call rooms' own on-connect hook.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Organization, Role
from accounts.views import OrganizationView
from dispatch.models import PENDING_OFFER, InterpretationRequest, Offer
from dispatch.queue import current_view
from dispatch.service import OPEN
from dispatch.views import offer_message, offer_view, request_message


async def current_state(
    session: AsyncSession, user_id: str, role: Role, now: datetime
) -> list[dict[str, Any]]:
    """The messages that bring a freshly connected socket up to date."""
    messages: list[dict[str, Any]] = []
    if role == Role.COUNSELLOR:
        requests = await session.exec(
            select(InterpretationRequest)
            .where(col(InterpretationRequest.counsellor_id) == user_id)
            .where(col(InterpretationRequest.state).in_([s.value for s in OPEN]))
            .order_by(col(InterpretationRequest.created_at))
        )
        for req in requests:
            messages.append(request_message(await current_view(session, req)))
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
            messages.append(offer_message(view))
    return messages
