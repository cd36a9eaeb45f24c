"""Bookings as the wire shows them (`wire.objects.BookingView`), built from their rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Organization, Site, User
from accounts.views import OrganizationView
from calls.views import interpreter_party
from dispatch.booking_models import Booking
from dispatch.booking_rules import give_back_until
from dispatch.views import preferences_view
from infra.fields import made_from
from interpreters.models import Interpreter, ShownAs
from interpreters.naming import roster_setting
from wire.objects import BookingState, BookingView, PartyView, SitePlace


class BookingResponse(BaseModel):
    booking: BookingView


class BookingsResponse(BaseModel):
    bookings: list[BookingView]


@dataclass(frozen=True, slots=True)
class Names:
    """What a booking's view names besides its own row: people, organisations, profiles."""

    users: dict[str, User]
    organizations: dict[str, Organization]
    sites: dict[str, Site]
    profiles: dict[str, Interpreter]
    shown_as: ShownAs


def booking_view(
    booking: Booking, names: Names, give_back_before_s: int, *, full: bool = True
) -> BookingView:
    """A booking; `full` names the interpreter who claimed it (its counsellor, that
    interpreter and admins), else it is left out (other interpreters)."""
    counsellor = names.users[booking.counsellor_id]
    org = names.organizations[booking.organization_id]
    interpreter = None
    if full and booking.interpreter_id is not None:
        interpreter = interpreter_party(
            names.users[booking.interpreter_id],
            names.profiles.get(booking.interpreter_id),
            names.shown_as,
        )
    claimed = booking.state == BookingState.CLAIMED
    site = names.sites.get(booking.site_id) if booking.site_id else None
    return made_from(
        BookingView,
        booking,
        preferences=preferences_view(booking),
        organization=made_from(OrganizationView, org),
        site=made_from(SitePlace, site) if site else None,
        counsellor=made_from(PartyView, counsellor),
        interpreter=interpreter,
        escalated=booking.escalated_at is not None,
        give_back_until=give_back_until(booking.starts_at, give_back_before_s) if claimed else None,
    )


async def load_names(session: AsyncSession, bookings: Sequence[Booking]) -> Names:
    """Everyone and everything the views of `bookings` name, in four queries."""
    user_ids = {b.counsellor_id for b in bookings} | {
        b.interpreter_id for b in bookings if b.interpreter_id
    }
    org_ids = {b.organization_id for b in bookings}
    users = await session.exec(select(User).where(col(User.id).in_(sorted(user_ids))))
    orgs = await session.exec(select(Organization).where(col(Organization.id).in_(sorted(org_ids))))
    site_ids = sorted({b.site_id for b in bookings if b.site_id})
    sites = await session.exec(select(Site).where(col(Site.id).in_(site_ids)))
    profiles = await session.exec(
        select(Interpreter).where(col(Interpreter.user_id).in_(sorted(user_ids)))
    )
    setting = await roster_setting(session)
    return Names(
        users={u.id: u for u in users},
        organizations={o.id: o for o in orgs},
        sites={x.id: x for x in sites},
        profiles={p.user_id: p for p in profiles},
        shown_as=setting.interpreter_shown_as,
    )


async def load_views(
    session: AsyncSession, bookings: Sequence[Booking], give_back_before_s: int, *, full: bool
) -> list[BookingView]:
    """The views of several bookings."""
    if not bookings:
        return []
    names = await load_names(session, bookings)
    return [booking_view(b, names, give_back_before_s, full=full) for b in bookings]
