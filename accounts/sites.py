"""Sites of an organisation as an admin keeps them: one of each name per organisation (case
aside), an IANA time zone, and the events each change leaves. A user's site must be an
active site of their own organisation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import service
from accounts.audit import Action, AuditedChange, Target
from accounts.errors import SiteExists, UnknownSite, UnknownTimeZone
from accounts.models import Site
from infra.clock import is_time_zone
from infra.errors import NotFound

DEFAULT_TIME_ZONE = "Europe/Berlin"


@dataclass(frozen=True, slots=True)
class NewSite:
    """A site as an admin describes it (name and address trimmed)."""

    organization_id: str
    name: str
    address: str = ""
    time_zone: str = DEFAULT_TIME_ZONE


@dataclass(frozen=True, slots=True)
class SiteChanges:
    """What an admin changes of a site; None leaves a field as it is."""

    name: str | None = None
    address: str | None = None
    time_zone: str | None = None
    active: bool | None = None


def check_time_zone(name: str) -> str:
    """The name when it is an IANA time zone, else UnknownTimeZone (422, `time_zone`)."""
    if not is_time_zone(name):
        raise UnknownTimeZone(f"{name[:64]!r} is not an IANA time zone", field="time_zone")
    return name


async def find_site_by_name(
    session: AsyncSession, organization_id: str, name: str, other_than: str | None = None
) -> Site | None:
    """The organisation's site of that name in any case, if any (but `other_than`)."""
    # Compared in Python: SQLite's lower() folds only ASCII ("Ämter" and "ämter" would
    # pass), and an organisation has a handful of sites.
    query = select(Site).where(col(Site.organization_id) == organization_id)
    if other_than is not None:
        query = query.where(col(Site.id) != other_than)
    wanted = name.casefold()
    return next((s for s in await session.exec(query) if s.name.casefold() == wanted), None)


async def create_site(session: AsyncSession, new: NewSite, now: datetime) -> Site:
    """Add a site to the session (the name and zone checked by the caller)."""
    site = Site(
        organization_id=new.organization_id,
        name=new.name.strip(),
        address=new.address.strip(),
        time_zone=new.time_zone,
        created_at=now,
    )
    session.add(site)
    await session.flush()
    return site


async def get_site(session: AsyncSession, site_id: str) -> Site:
    """The site with that id, or NotFound."""
    site = await session.get(Site, site_id)
    if site is None:
        raise NotFound("No such site.")
    return site


async def list_sites(session: AsyncSession, organization_id: str | None = None) -> list[Site]:
    """Sites (of one organisation, or all), by organisation and name."""
    query = select(Site)
    if organization_id is not None:
        query = query.where(col(Site.organization_id) == organization_id)
    result = await session.exec(query.order_by(col(Site.organization_id), col(Site.name)))
    return list(result.all())


async def site_for_user(session: AsyncSession, site_id: str, organization_id: str) -> Site:
    """The site a user of `organization_id` may be put on: an active one of theirs."""
    site = await session.get(Site, site_id)
    if site is None or site.organization_id != organization_id or not site.active:
        raise UnknownSite(field="site_id")
    return site


async def add_site(change: AuditedChange, new: NewSite) -> Site:
    """Add a site to an organisation: a known zone (422) and a name the organisation has
    not used (409)."""
    check_time_zone(new.time_zone)
    session = change.session
    await service.get_organization(session, new.organization_id)
    if await find_site_by_name(session, new.organization_id, new.name.strip()):
        raise SiteExists(field="name")
    with _name_unique():
        site = await create_site(session, new, change.now)
    await change.record(
        Action.SITE_CREATED,
        _target(site),
        organization_id=site.organization_id,
        time_zone=site.time_zone,
    )
    return site


async def change_site(change: AuditedChange, site_id: str, changes: SiteChanges) -> Site:
    """Rename, move, set the zone of, deactivate or reactivate a site."""
    if changes.time_zone is not None:
        check_time_zone(changes.time_zone)
    session = change.session
    site = await get_site(session, site_id)
    name = changes.name.strip() if changes.name is not None else None
    if name and await find_site_by_name(session, site.organization_id, name, site.id):
        raise SiteExists(field="name")
    changed = _apply(site, changes, name)
    if changed:
        session.add(site)
        with _name_unique():
            await session.flush()
        await change.record(Action.SITE_CHANGED, _target(site), **changed)
    return site


@contextmanager
def _name_unique() -> Iterator[None]:
    """SiteExists when the flush breaks the one-name-per-organisation constraint: the same
    name written at the same moment by another request, after the check found none."""
    try:
        yield
    except IntegrityError:
        raise SiteExists(field="name") from None


def _apply(site: Site, changes: SiteChanges, name: str | None) -> dict[str, Any]:
    """Change the row; what changed, for the event."""
    wanted = {
        "name": name,
        "address": changes.address.strip() if changes.address is not None else None,
        "time_zone": changes.time_zone,
        "active": changes.active,
    }
    changed: dict[str, Any] = {}
    for field, value in wanted.items():
        if value is not None and value != getattr(site, field):
            setattr(site, field, value)
            changed[field] = value
    return changed


def _target(site: Site) -> Target:
    return Target("site", site.id, site.name)
