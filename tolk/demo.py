"""The demo roster: three organisations of a welcome centre, their sites and staff, and
interpreters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import password_links, service, sites, terminals
from accounts.audit import SYSTEM
from accounts.models import Role, Site
from accounts.passwords import hash_password_sync
from billing import scope, tariffs
from infra.db import Database
from interpreters import service as roster
from interpreters.models import IN_HOUSE_POOL
from tolk.demo_bookings import seed_bookings
from tolk.demo_history import DEMAND as HISTORY_DEMAND
from tolk.demo_history import seed_history

DEMO_PASSWORD = "demo-tolk-2026"  # noqa: S105 (a documented demo login, not a secret)

ORGANIZATIONS = (
    ("Stadt Dortmund – Sozialamt", "50-SOZ"),
    ("Jobcenter Dortmund", "JC-DO"),
    ("Caritas Dortmund", "CAR-DO"),
)


# The city's welcome centre at Friedensplatz and its Infopoint; the others one site each.
SITES = (
    (ORGANIZATIONS[0][0], "MigraDo Friedensplatz", "Friedensplatz, 44135 Dortmund"),
    (ORGANIZATIONS[0][0], "Infopoint", "Dortmund"),
    (ORGANIZATIONS[1][0], "Jobcenter Dortmund", "Dortmund"),
    (ORGANIZATIONS[2][0], "Caritas Dortmund", "Dortmund"),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    organization: str
    site: str | None = None


@dataclass(frozen=True)
class DemoInterpreter:
    username: str
    display_name: str
    languages: tuple[str, ...]
    gender: str
    specializations: tuple[str, ...] = ()


STAFF = (
    DemoUser(
        "berater.sozialamt", "Anna Schulte", Role.COUNSELLOR, ORGANIZATIONS[0][0], SITES[0][1]
    ),
    DemoUser("berater.infopoint", "Kai Neumann", Role.COUNSELLOR, ORGANIZATIONS[0][0], SITES[1][1]),
    DemoUser("berater.nour", "Nour Khatib", Role.COUNSELLOR, ORGANIZATIONS[0][0], SITES[0][1]),
    DemoUser(
        "berater.jobcenter", "Murat Yilmaz", Role.COUNSELLOR, ORGANIZATIONS[1][0], SITES[2][1]
    ),
    DemoUser("berater.caritas", "Julia Becker", Role.COUNSELLOR, ORGANIZATIONS[2][0], SITES[3][1]),
    DemoUser("finanzen", "Thomas Krüger", Role.FINANCE, ORGANIZATIONS[0][0]),
    DemoUser("finanzen.jobcenter", "Petra Lange", Role.FINANCE, ORGANIZATIONS[1][0]),
    DemoUser("admin", "Sabine Wagner", Role.ADMIN, ORGANIZATIONS[0][0]),
    DemoUser("leitung", "Monika Hoffmann", Role.MANAGEMENT, ORGANIZATIONS[0][0]),
)
# A self-service terminal in the foyer at Friedensplatz (accounts.terminals).
DEMO_TERMINAL = ("terminal.friedensplatz", "Terminal Foyer", SITES[0][1])
DEVICE_LINK_S = 30 * 86400
IN_HOUSE = (("berater.nour", ("ar",)),)
"""Counsellors who also interpret in the house, with their languages: asked before the
external interpreters, billed by the in-house tariff."""
CENTRE_FINANCE_OFFICE = "finanzen"
CENTRE_ZONE = ZoneInfo("Europe/Berlin")
COUNSELLORS = [u.username for u in STAFF if u.role == Role.COUNSELLOR]
INTERPRETER_ORGANIZATION = "Dolmetschpool Dortmund"
SPECIALIZATIONS = ("social", "medical", "legal", "school")
INTERPRETERS = (
    DemoInterpreter("olena", "Olena Kovalenko", ("uk", "ru"), "female", ("social",)),
    DemoInterpreter("dmytro", "Dmytro Shevchenko", ("uk",), "male", ("legal",)),
    DemoInterpreter("layla", "Layla Haddad", ("ar", "ar-SY"), "female", ("medical",)),
    DemoInterpreter("omar", "Omar Khalil", ("ar",), "male", ("social",)),
    DemoInterpreter("farid", "Farid Ahmadi", ("fa-AF", "ps"), "male", ("social",)),
    DemoInterpreter("shirin", "Shirin Rahimi", ("fa", "fa-AF"), "female", ("medical",)),
    DemoInterpreter("elif", "Elif Demir", ("tr", "kmr"), "female", ("school",)),
    DemoInterpreter("rojda", "Rojda Aydin", ("kmr", "ckb"), "female", ("social",)),
    DemoInterpreter("tesfay", "Tesfay Gebremedhin", ("ti",), "male", ("social",)),
    DemoInterpreter("ioana", "Ioana Popescu", ("ro",), "female", ("school",)),
    DemoInterpreter("georgi", "Georgi Petrov", ("bg", "ru"), "male", ("legal",)),
    DemoInterpreter("agnieszka", "Agnieszka Nowak", ("pl",), "female", ("medical",)),
    DemoInterpreter("claire", "Claire Dubois", ("fr", "en"), "female", ("legal",)),
    DemoInterpreter("james", "James Okafor", ("en", "fr"), "male", ("school",)),
)


DEMO_TARIFFS: tuple[tuple[str | None, dict[str, Any]], ...] = (
    # The default tariff: per started minute.
    (None, {"name": "Standard", "unit_s": 60, "minimum_s": 0, "price_per_unit_cents": 150}),
    # Colleagues who interpret cost the centre nothing extra; the minutes still show.
    (
        None,
        {
            "name": "Kolleg*innen im Haus",
            "unit_s": 60,
            "minimum_s": 0,
            "price_per_unit_cents": 0,
            "in_house": True,
        },
    ),
    # The Jobcenter's framework contract: per started quarter hour, at least one.
    (
        ORGANIZATIONS[1][0],
        {
            "name": "Jobcenter Rahmenvertrag",
            "unit_s": 900,
            "minimum_s": 900,
            "price_per_unit_cents": 1800,
        },
    ),
)
TARIFFS_VALID_FROM = date(2025, 1, 1)


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: str


async def _seed_tariffs(session: AsyncSession, org_ids: dict[str, str], now: datetime) -> None:
    """The default tariff and the Jobcenter's, unless they are there already."""
    known = {(t.organization_id, t.name) for t in await tariffs.list_tariffs(session)}
    for org_name, terms in DEMO_TARIFFS:
        org_id = org_ids[org_name] if org_name else None
        if (org_id, terms["name"]) not in known:
            values = {**terms, "organization_id": org_id, "valid_from": TARIFFS_VALID_FROM}
            await tariffs.create_tariff(session, values, None, now)


async def _seed_sites(
    session: AsyncSession, org_ids: dict[str, str], now: datetime
) -> dict[str, Site]:
    """The demo's sites by name, made where missing."""
    found = {}
    for org_name, name, address in SITES:
        site = await sites.find_site_by_name(session, org_ids[org_name], name)
        if site is None:
            new = sites.NewSite(org_ids[org_name], name, address)
            site = await sites.create_site(session, new, now)
        found[name] = site
    return found


async def _seed_terminal(session: AsyncSession, places: dict[str, Site], now: datetime) -> Login:
    """The demo's terminal; each seeding makes a fresh device link, printed as its login
    (the one printed before stops working; opening it moves the terminal to that device)."""
    username, name, site = DEMO_TERMINAL
    user = await service.find_user(session, username)
    if user is None:
        user = await terminals.create_terminal(session, name, places[site].id, now, username)
    link = await password_links.replace_links(session, user.id, SYSTEM, now, DEVICE_LINK_S)
    return Login(username, f"{terminals.PAGE}#{link.secret}", Role.TERMINAL.value)


async def seed_demo(db: Database, now: datetime, zone: ZoneInfo = CENTRE_ZONE) -> list[Login]:
    """Create what is missing of the demo roster, and four weeks of history for the
    statistics when there is none; running it twice changes nothing."""
    password_hash = hash_password_sync(DEMO_PASSWORD)
    logins: list[Login] = []
    async with db.write() as session:
        orgs = {
            name: await service.get_or_create_organization(session, name, cost_center, now)
            for name, cost_center in (*ORGANIZATIONS, (INTERPRETER_ORGANIZATION, "POOL"))
        }
        people = [
            *STAFF,
            *(
                DemoUser(i.username, i.display_name, Role.INTERPRETER, INTERPRETER_ORGANIZATION)
                for i in INTERPRETERS
            ),
        ]
        places = await _seed_sites(session, {name: org.id for name, org in orgs.items()}, now)
        for person in people:
            user = await service.find_user(session, person.username)
            if user is None:
                user = await service.create_user(
                    session,
                    username=person.username,
                    password_hash=password_hash,
                    display_name=person.display_name,
                    role=person.role,
                    organization_id=orgs[person.organization].id,
                    now=now,
                )
            if person.site and user.site_id is None:
                user.site_id = places[person.site].id
                session.add(user)
            logins.append(Login(person.username, DEMO_PASSWORD, person.role.value))
        logins.append(await _seed_terminal(session, places, now))
        # The centre's own finance office sees every organisation's usage; the Jobcenter's
        # finance user only the Jobcenter's (billing.scope).
        office = await service.find_user(session, CENTRE_FINANCE_OFFICE)
        assert office is not None
        await scope.grant(session, office.id, None, None, now)
        for name in SPECIALIZATIONS:
            await roster.add_specialization(session, name)
        await _seed_tariffs(session, {name: org.id for name, org in orgs.items()}, now)
        await _seed_profiles(session, now)
    await seed_history(db, now, zone, COUNSELLORS, _speakers())
    await seed_bookings(db, now, zone)
    return logins


async def _seed_profiles(session: AsyncSession, now: datetime) -> None:
    """The agency's interpreters' profiles, and the colleagues who interpret in the house."""
    for demo in INTERPRETERS:
        user = await service.find_user(session, demo.username)
        assert user is not None
        await roster.upsert_profile(
            session,
            user.id,
            roster.ProfileData(
                languages=roster.normalize_languages(demo.languages),
                gender=demo.gender,
                specializations=demo.specializations,
                agency=INTERPRETER_ORGANIZATION,
            ),
            now,
        )
    for username, languages in IN_HOUSE:
        user = await service.find_user(session, username)
        assert user is not None
        profile = roster.ProfileData(
            languages=roster.normalize_languages(languages), pool_id=IN_HOUSE_POOL
        )
        await roster.upsert_profile(session, user.id, profile, now)


def _speakers() -> dict[str, list[str]]:
    """Per language of the demo's history, the demo interpreters who speak it."""
    return {tag: [i.username for i in INTERPRETERS if tag in i.languages] for tag in HISTORY_DEMAND}
