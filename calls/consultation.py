"""Consultation rooms: a counsellor's room, its guest invited by link, its interpreters'
segments (each a `call` with the room's id), who is present, and the room's end.

As with calls, every state change is a guarded UPDATE checked by row count: a room ends
exactly once, an invitation is used exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.guests import end_guest_sessions, open_guest_session
from accounts.models import GuestSession, User
from accounts.service import token_digest
from accounts.views import Identity
from calls.announce import announce_ending
from calls.hooks import CallEndedHook
from calls.lifecycle import Ending, end_call
from calls.models import (
    LIVE_CALL,
    OPEN_ROOM,
    Call,
    CallState,
    EndReason,
    Invitation,
    ParticipantRole,
    Room,
    RoomParticipant,
    RoomPresence,
    RoomState,
)
from calls.views import load_call_view
from infra.bus import Bus, publish_json, user_channel
from infra.errors import Conflict, Forbidden, NotFound, TolkError
from infra.fields import made_from
from interpreters.events import PresenceNews
from interpreters.models import Interpreter, ShownAs
from interpreters.naming import roster_setting
from wire.objects import CallView
from wire.rooms import ParticipantView, RoomCounsellorView, RoomRole, RoomView
from wire.server import RoomUpdated

RANK = {ParticipantRole.COUNSELLOR: 0, ParticipantRole.GUEST: 1, ParticipantRole.INTERPRETER: 2}
"""Politeness by rank: in each pair of participants the higher rank (who came in) is polite."""


class RoomNotFound(NotFound):
    code = "room_not_found"
    default_message = "No such room."


class RoomOpenAlready(Conflict):
    code = "room_open"
    default_message = "You have a consultation room open already."


class RoomEnded(Conflict):
    code = "room_ended"
    default_message = "The consultation has ended."


class NotInRoom(Forbidden):
    code = "forbidden"
    default_message = "Only the room's participants may do this, after room.join."


class RoomHasGuest(Conflict):
    code = "room_has_guest"
    default_message = "Someone has joined this consultation by link already."


class InvitationUnknown(NotFound):
    code = "invitation_unknown"
    default_message = "This invitation is not valid (any more)."


class InvitationUsed(TolkError):
    status = 410
    code = "invitation_used"
    default_message = "This invitation has been used already."


class InvitationExpired(TolkError):
    status = 410
    code = "invitation_expired"
    default_message = "This invitation has expired."


def room_channel(room_id: str) -> str:
    """The bus channel of a consultation room: presence news and room updates for every
    instance that holds a socket in the room."""
    return f"room:{room_id}"


# --- rooms -------------------------------------------------------------------------------


async def open_room(session: AsyncSession, counsellor: User, now: datetime) -> Room:
    """A counsellor opens a room (at most one open room each: 409 `room_open`)."""
    existing = await open_room_of(session, counsellor.id)
    if existing is not None:
        raise RoomOpenAlready(room_id=existing.id)
    room = Room(
        counsellor_id=counsellor.id,
        organization_id=counsellor.organization_id,
        state=RoomState.OPEN,
        created_at=now,
        site_id=counsellor.site_id,
    )
    session.add(room)
    session.add(
        _participant(
            room.id, counsellor.id, ParticipantRole.COUNSELLOR, counsellor.display_name, now
        )
    )
    try:
        await session.flush()
    except IntegrityError:
        # Another tab opened one in the same instant: the partial unique index decides.
        raise RoomOpenAlready() from None
    return room


async def open_room_of(session: AsyncSession, counsellor_id: str) -> Room | None:
    """The counsellor's open room, if any."""
    rows = await session.exec(
        select(Room).where(col(Room.counsellor_id) == counsellor_id).where(OPEN_ROOM)
    )
    return rows.first()


async def owned_room(
    session: AsyncSession, room_id: str, user_id: str, *, admin: bool = False
) -> Room:
    """A room its counsellor (or an admin) asks about; anyone else gets 404."""
    room = await session.get(Room, room_id)
    if room is None or (room.counsellor_id != user_id and not admin):
        raise RoomNotFound()
    return room


async def open_owned_room(session: AsyncSession, room_id: str, user_id: str) -> Room:
    """The counsellor's room, which must still be open (409 `room_ended`)."""
    room = await owned_room(session, room_id, user_id)
    if room.state != RoomState.OPEN:
        raise RoomEnded()
    return room


async def participants(
    session: AsyncSession, room_id: str, *, with_left: bool = False
) -> list[RoomParticipant]:
    """Who belongs in the room, in the order they were added."""
    query = select(RoomParticipant).where(col(RoomParticipant.room_id) == room_id)
    if not with_left:
        query = query.where(col(RoomParticipant.left_at).is_(None))
    rows = await session.exec(query.order_by(col(RoomParticipant.added_at)))
    return list(rows.all())


async def audience(session: AsyncSession, room_id: str) -> list[str]:
    """Who hears of the room's changes: who belongs in it, and guests who left (their cookie
    may bring them back, so their page must hear when the room ends)."""
    rows = await participants(session, room_id, with_left=True)
    return [
        r.participant_id for r in rows if r.left_at is None or r.role == ParticipantRole.GUEST.value
    ]


async def participant_of(
    session: AsyncSession, room_id: str, participant_id: str
) -> RoomParticipant | None:
    """A participant's current row in a room (not left)."""
    rows = await session.exec(
        select(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .where(col(RoomParticipant.participant_id) == participant_id)
        .where(col(RoomParticipant.left_at).is_(None))
    )
    return rows.first()


async def room_view(
    session: AsyncSession, room: Room, present: frozenset[str] | None = None
) -> RoomView:
    """A room as its participants see it; `present` names who has a socket in it (read from
    the presence rows when not given)."""
    rows = await participants(session, room.id)
    if present is None:
        found = await session.exec(
            select(RoomPresence.participant_id).where(col(RoomPresence.room_id) == room.id)
        )
        present = frozenset(found.all())
    counsellor = next((p for p in rows if p.role == ParticipantRole.COUNSELLOR), None)
    numbers = await _numbers(session, [p for p in rows if p.role == ParticipantRole.INTERPRETER])
    return made_from(
        RoomView,
        room,
        counsellor=RoomCounsellorView(
            id=room.counsellor_id, display_name=counsellor.display_name or "" if counsellor else ""
        ),
        participants=[participant_view(p, p.participant_id in present, numbers) for p in rows],
    )


async def _numbers(
    session: AsyncSession, interpreters: Sequence[RoomParticipant]
) -> dict[str, int | None]:
    """Interpreters' numbers, when the centre shows numbers instead of names."""
    if not interpreters:
        return {}
    setting = await roster_setting(session)
    if setting.interpreter_shown_as == ShownAs.NAME:
        return {}
    ids = [p.participant_id for p in interpreters]
    rows = await session.exec(
        select(Interpreter.user_id, Interpreter.number).where(col(Interpreter.user_id).in_(ids))
    )
    return dict(rows.all())


def participant_view(
    row: RoomParticipant, present: bool, numbers: dict[str, int | None] | None = None
) -> ParticipantView:
    """One participant; an interpreter shown by number hides the name."""
    numbers = numbers or {}
    by_number = row.participant_id in numbers
    return ParticipantView(
        id=row.participant_id,
        role=RoomRole(row.role),
        display_name=None if by_number else row.display_name,
        language=row.language,
        number=numbers.get(row.participant_id),
        present=present,
        call_id=row.call_id,
    )


def polite(me: RoomParticipant, other: RoomParticipant, incoming_call: str | None) -> bool:
    """Whether `me` is the polite side towards `other`. The one who comes in is polite, as
    in a two-party call: the guest towards the counsellor, an interpreter towards both.
    Between two interpreters (a hand-over) the incoming one is the room's current segment
    (`room.call_id`, `incoming_call`), whatever the order of their clocks or their joins."""
    mine, theirs = RANK[ParticipantRole(me.role)], RANK[ParticipantRole(other.role)]
    if mine != theirs:
        return mine > theirs
    if incoming_call is not None and incoming_call in (me.call_id, other.call_id):
        return me.call_id == incoming_call
    return (me.added_at, me.id) > (other.added_at, other.id)


# --- invitations and guests ---------------------------------------------------------------


@dataclass(frozen=True)
class NewInvitation:
    """An invitation as made: its token is known only now."""

    invitation: Invitation
    token: str


def invitation_token(secret: str, invitation_id: str) -> str:
    """An invitation's token, derived from the server's secret: the database keeps only its
    SHA-256, yet the counsellor's page can fetch the QR code of the link again."""
    mac = hmac.new(secret.encode(), f"invitation:{invitation_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


async def invite(
    session: AsyncSession, room: Room, now: datetime, ttl_s: int, secret: str
) -> NewInvitation:
    """A new single-use invitation to the room; the previous unused one is revoked."""
    await _revoke_unused_invitations(session, room.id, now)
    invitation = Invitation(room_id=room.id, token_hash="", created_at=now, expires_at=now)
    token = invitation_token(secret, invitation.id)
    invitation = Invitation(
        id=invitation.id,
        room_id=room.id,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )
    session.add(invitation)
    await session.flush()
    return NewInvitation(invitation, token)


async def _revoke_unused_invitations(session: AsyncSession, room_id: str, now: datetime) -> None:
    """The room's invitation that nobody has used opens nothing any more."""
    await session.exec(
        update(Invitation)
        .where(col(Invitation.room_id) == room_id)
        .where(col(Invitation.used_at).is_(None))
        .where(col(Invitation.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def _invitation(session: AsyncSession, token: str) -> Invitation:
    """The invitation of a link's token, unless revoked (404 `invitation_unknown`)."""
    invitation = (
        await session.exec(
            select(Invitation).where(col(Invitation.token_hash) == token_digest(token))
        )
    ).first()
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationUnknown()
    return invitation


async def invited_room(session: AsyncSession, token: str, now: datetime) -> Room:
    """The open room a link leads to, its invitation used or not (the guest who came in by
    it opens it again); revoked, unknown, expired unused or of an ended room: refused."""
    invitation = await _invitation(session, token)
    if invitation.used_at is None and invitation.expires_at <= now:
        raise InvitationExpired()
    room = await session.get(Room, invitation.room_id)
    if room is None or room.state != RoomState.OPEN:
        raise InvitationUnknown()
    return room


async def admit_guest(
    session: AsyncSession,
    token: str,
    *,
    name: str | None,
    language: str | None,
    now: datetime,
    session_s: int,
) -> tuple[Room, GuestSession, str]:
    """Use an invitation: the guest becomes the room's guest and gets a cookie for this room
    only. Used, expired, revoked or unknown: refused; so is a second guest while the room
    has one (409 `room_has_guest`), and the invitation stays unused."""
    invitation = await _invitation(session, token)
    if invitation.used_at is not None:
        raise InvitationUsed()
    if invitation.expires_at <= now:
        raise InvitationExpired()
    room = await _locked_room(session, invitation.room_id)
    if room is None or room.state != RoomState.OPEN:
        raise InvitationUnknown()
    if await current_guest(session, room.id) is not None:
        raise RoomHasGuest()
    used = await session.exec(
        update(Invitation)
        .where(col(Invitation.id) == invitation.id)
        .where(col(Invitation.used_at).is_(None))
        .where(col(Invitation.revoked_at).is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:
        raise InvitationUsed()
    # An earlier guest who left cannot come back once another one is admitted.
    await end_guest_sessions(session, room.id, now)
    guest, cookie = await open_guest_session(
        session,
        room_id=room.id,
        organization_id=room.organization_id,
        display_name=name or "Gast",
        language=language,
        now=now,
        expires_at=now + timedelta(seconds=session_s),
    )
    session.add(
        _participant(
            room.id,
            guest.guest_id,
            ParticipantRole.GUEST,
            guest.display_name,
            now,
            language=language,
        )
    )
    await session.flush()
    return room, guest, cookie


async def readmit_guest(
    session: AsyncSession, room_id: str, guest: Identity, now: datetime
) -> RoomParticipant:
    """A guest who left (or was lost) comes back with their cookie while the room is open;
    refused when their session has ended or another guest came in meanwhile."""
    guest_id = guest.user_id
    await _locked_room(session, room_id)
    live = await session.exec(
        select(GuestSession.guest_id)
        .where(col(GuestSession.guest_id) == guest_id)
        .where(col(GuestSession.room_id) == room_id)
        .where(col(GuestSession.ended_at).is_(None))
        .where(col(GuestSession.expires_at) > now)
    )
    if live.first() is None:
        raise NotInRoom()
    current = await current_guest(session, room_id)
    if current is not None:
        if current.participant_id == guest_id:
            return current
        raise RoomHasGuest()
    row = _participant(
        room_id, guest_id, ParticipantRole.GUEST, guest.display_name, now, language=guest.language
    )
    session.add(row)
    await session.flush()
    return row


async def current_guest(session: AsyncSession, room_id: str) -> RoomParticipant | None:
    """The room's guest, if one is in it (a room holds at most one)."""
    rows = await session.exec(
        select(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room_id)
        .where(col(RoomParticipant.role) == ParticipantRole.GUEST.value)
        .where(col(RoomParticipant.left_at).is_(None))
    )
    return rows.first()


def _participant(
    room_id: str,
    participant_id: str,
    role: ParticipantRole,
    display_name: str | None,
    now: datetime,
    *,
    language: str | None = None,
    call_id: str | None = None,
) -> RoomParticipant:
    """A new row of someone who belongs in the room from `now`."""
    return RoomParticipant(
        room_id=room_id,
        participant_id=participant_id,
        role=role,
        display_name=display_name,
        language=language,
        call_id=call_id,
        added_at=now,
    )


async def _locked_room(session: AsyncSession, room_id: str) -> Room | None:
    """The room, its row locked until the commit (PostgreSQL; SQLite writes one at a time),
    so that two guests coming in at once cannot both find it without one."""
    return await session.get(Room, room_id, with_for_update=True, populate_existing=True)


# --- segments -----------------------------------------------------------------------------


async def add_interpreter(session: AsyncSession, call: Call, now: datetime) -> None:
    """An interpreter accepted a request of the room: their segment belongs in the room."""
    assert call.room_id is not None
    user = await session.get(User, call.interpreter_id)
    name = user.display_name if user else None
    session.add(
        _participant(
            call.room_id,
            call.interpreter_id,
            ParticipantRole.INTERPRETER,
            name,
            now,
            language=call.language,
            call_id=call.id,
        )
    )
    await session.exec(
        update(Room).where(col(Room.id) == call.room_id).where(OPEN_ROOM).values(call_id=call.id)
    )
    await session.flush()


async def end_segment(
    session: AsyncSession,
    call: Call,
    reason: EndReason,
    *,
    now: datetime,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
) -> Ending | None:
    """End an interpreter's segment once: billed by the hooks, the interpreter leaves the
    room. None when it had ended already."""
    ending = await end_call(session, call, reason=reason, now=now, wrap_up_s=wrap_up_s, hooks=hooks)
    await session.exec(
        update(RoomParticipant)
        .where(col(RoomParticipant.call_id) == call.id)
        .where(col(RoomParticipant.left_at).is_(None))
        .values(left_at=now)
    )
    if call.room_id is not None:
        await session.exec(
            delete(RoomPresence)
            .where(col(RoomPresence.room_id) == call.room_id)
            .where(col(RoomPresence.participant_id) == call.interpreter_id)
        )
    return ending


async def usable_invitation(
    session: AsyncSession, room: Room, invitation_id: str, now: datetime
) -> Invitation:
    """An invitation of the room that may still be used (404 `invitation_unknown` else)."""
    invitation = await session.get(Invitation, invitation_id)
    if (
        invitation is None
        or invitation.room_id != room.id
        or invitation.used_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise InvitationUnknown()
    return invitation


async def leave(
    session: AsyncSession,
    room: Room,
    row: RoomParticipant,
    *,
    now: datetime,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
    reason: EndReason = EndReason.HANGUP,
) -> list[Ending]:
    """A guest or an interpreter leaves the room (the others stay): an interpreter's segment
    ends for good; a guest's cookie lasts, so the guest may come back while the room is
    open (`readmit_guest`)."""
    endings: list[Ending] = []
    if row.role == ParticipantRole.INTERPRETER and row.call_id is not None:
        call = await session.get(Call, row.call_id)
        if call is not None:
            ending = await end_segment(
                session, call, reason, now=now, wrap_up_s=wrap_up_s, hooks=hooks
            )
            endings.extend([ending] if ending is not None else [])
    await session.exec(
        update(RoomParticipant).where(col(RoomParticipant.id) == row.id).values(left_at=now)
    )
    await session.exec(
        delete(RoomPresence)
        .where(col(RoomPresence.room_id) == room.id)
        .where(col(RoomPresence.participant_id) == row.participant_id)
    )
    return endings


async def live_segments(session: AsyncSession, room_id: str) -> list[Call]:
    """The room's segments that have not ended, oldest first."""
    rows = await session.exec(
        select(Call)
        .where(col(Call.room_id) == room_id)
        .where(LIVE_CALL)
        .order_by(col(Call.created_at))
    )
    return list(rows.all())


async def end_room(
    session: AsyncSession,
    room: Room,
    reason: str,
    *,
    now: datetime,
    wrap_up_s: int,
    hooks: Sequence[CallEndedHook],
) -> list[Ending] | None:
    """End the room for everyone, once: its segments end (`hangup`, or `lost` when the
    counsellor was lost), its invitations and guest sessions die. None if it had ended."""
    result = await session.exec(
        update(Room)
        .where(col(Room.id) == room.id)
        .where(OPEN_ROOM)
        .values(state=RoomState.ENDED.value, ended_at=now, end_reason=reason)
    )
    if result.rowcount != 1:
        return None
    await session.refresh(room)
    segment_reason = EndReason.LOST if reason == "lost" else EndReason.HANGUP
    endings = []
    for call in await live_segments(session, room.id):
        ending = await end_segment(
            session, call, segment_reason, now=now, wrap_up_s=wrap_up_s, hooks=hooks
        )
        if ending is not None:
            endings.append(ending)
    await _revoke_unused_invitations(session, room.id, now)
    await end_guest_sessions(session, room.id, now)
    await session.exec(
        update(RoomParticipant)
        .where(col(RoomParticipant.room_id) == room.id)
        .where(col(RoomParticipant.left_at).is_(None))
        .values(left_at=now)
    )
    await session.exec(delete(RoomPresence).where(col(RoomPresence.room_id) == room.id))
    return endings


def segment_is_live(call: Call) -> bool:
    """Whether a segment still runs."""
    return call.state != CallState.ENDED


# --- news ---------------------------------------------------------------------------------


async def announce_room(bus: Bus, view: RoomView, also: Sequence[str] = ()) -> None:
    """After a room's change committed: `room.updated` to everyone who belongs in it (and
    `also` to those who just left), and word to every instance holding its sockets."""
    message = RoomUpdated(room=view)
    for participant_id in {*(p.id for p in view.participants), view.counsellor.id, *also}:
        await publish_json(bus, user_channel(participant_id), message)
    await publish_json(bus, room_channel(view.id), {"type": "room.changed", "state": view.state})


async def ending_views(
    session: AsyncSession, endings: Sequence[Ending]
) -> list[tuple[Ending, CallView]]:
    """Each ended segment with its view, read in the transaction that ended it."""
    return [(e, await load_call_view(session, e.call)) for e in endings]


async def announce_endings(
    bus: Bus, presence: PresenceNews, endings: Sequence[tuple[Ending, CallView]]
) -> None:
    """After the commit: each ended segment announced as any call's ending is."""
    for ending, view in endings:
        await announce_ending(bus, presence, ending, view)
