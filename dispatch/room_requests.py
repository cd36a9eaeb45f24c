"""Requests into a consultation room: the usual dispatch, for the room's counsellor, at
most one open request per room; a hand-over asks again for the room's language."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection, update
from sqlmodel import col, select

from accounts.models import Organization
from accounts.views import OrganizationView
from calls.consultation import RoomEnded, RoomNotFound
from calls.models import Room, RoomState
from dispatch import service
from dispatch.caps import open_within_cap
from dispatch.models import InterpretationRequest
from infra.config import Settings
from infra.errors import Conflict


class RoomRequestOpen(Conflict):
    code = "room_request_open"
    default_message = "The room has an open request already; cancel it or wait."


def open_room_request(
    conn: Connection,
    room_id: str,
    ask: service.Ask,
    /,
    *,
    now: datetime,
    settings: Settings,
    handover: bool = False,
) -> service.Opened:
    """One transaction: the room must be the counsellor's and open, with no open request;
    then the request is opened into it as any other, from the room's site (a hand-over is
    not held to the counsellor's cap of open requests: the counsellor did not ask)."""
    room = conn.execute(
        select(col(Room.counsellor_id), col(Room.state), col(Room.site_id))
        .where(col(Room.id) == room_id)
        .with_for_update()
    ).first()
    if room is None or room[0] != ask.counsellor_id:
        raise RoomNotFound()
    if room[1] != RoomState.OPEN:
        raise RoomEnded()
    already = conn.execute(
        select(col(InterpretationRequest.id))
        .where(col(InterpretationRequest.room_id) == room_id)
        .where(col(InterpretationRequest.state).in_([s.value for s in service.OPEN]))
    ).first()
    if already is not None:
        raise RoomRequestOpen(request_id=already[0])
    organization = ask.organization
    if not organization.name:
        name = conn.execute(
            select(col(Organization.name)).where(col(Organization.id) == organization.id)
        ).scalar_one()
        organization = OrganizationView(id=organization.id, name=name)
    limit = None if handover else settings.open_requests_per_counsellor
    ask = replace(ask, organization=organization, site_id=room[2], room_id=room_id)
    opened = open_within_cap(conn, ask, limit=limit, now=now, settings=settings)
    conn.execute(update(Room).where(col(Room.id) == room_id).values(request_id=opened.request.id))
    return opened
