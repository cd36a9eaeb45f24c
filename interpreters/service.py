"""Roster services: interpreter profiles, their languages and skills, and the live figures
per language. Services take the session and the time and never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, distinct, func, literal, union_all
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import audit, password_links
from accounts import service as accounts
from accounts.audit import Action, Actor, user_target
from accounts.models import Organization, Role, User
from accounts.password_links import NewLink
from infra.db import Database
from infra.errors import InvalidInput, NotFound
from infra.fields import made_from
from interpreters import naming, pools, presence
from interpreters.languages import autonym, display_name, normalize_tag, serving_tags
from interpreters.models import (
    IN_HOUSE_POOL,
    Interpreter,
    InterpreterLanguage,
    InterpreterSpecialization,
    PoolTier,
    Presence,
    Specialization,
)
from interpreters.views import InterpreterDetail, InterpreterView, LanguageName, LanguageView

GENDERS = ("female", "male", "diverse")


class NotAnInterpreterUser(InvalidInput):
    code = "not_an_interpreter"
    default_message = "Only users with the interpreter role can have an interpreter profile."


class NoProfileForMachines(NotAnInterpreterUser):
    default_message = "A machine account or a terminal cannot interpret."


async def _profile_pool(session: AsyncSession, user: User, pool_id: str | None) -> str | None:
    """The pool a profile goes into (None: leave it): a colleague who is not an interpreter
    only into an in-house pool (the in-house pool by default)."""
    if user.role == Role.INTERPRETER:
        if pool_id is not None:
            await pools.pool_tier(session, pool_id)
        return pool_id
    if user.machine or user.role == Role.TERMINAL:
        raise NoProfileForMachines(field="user_id")
    pool_id = pool_id or IN_HOUSE_POOL
    if await pools.pool_tier(session, pool_id) != PoolTier.IN_HOUSE:
        raise pools.PoolNotInHouse(field="pool_id")
    return pool_id


class UnknownSpecialization(InvalidInput):
    code = "unknown_specialization"
    default_message = "That specialisation is not in the list; an admin can add it."


@dataclass(frozen=True)
class ProfileData:
    """The editable part of an interpreter profile, validated and normalised."""

    languages: tuple[str, ...]
    gender: str | None = None
    specializations: tuple[str, ...] = ()
    agency: str | None = None
    pool_id: str | None = None
    """None: unchanged (new interpreters join the external pool, colleagues the in-house)."""

    @classmethod
    def of(
        cls,
        languages: Iterable[str],
        gender: str | None,
        specializations: Iterable[str],
        agency: str | None,
        pool_id: str | None = None,
    ) -> ProfileData:
        """A profile as an admin gives it: tags normalised, repeats dropped."""
        return cls(
            languages=normalize_languages(languages),
            gender=gender,
            specializations=tuple(dict.fromkeys(specializations)),
            agency=agency,
            pool_id=pool_id,
        )


def normalize_languages(tags: Iterable[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated tags in their given order (a bad one: 422 `languages.<i>`)."""
    seen: dict[str, None] = {}
    for index, tag in enumerate(tags):
        seen[normalize_tag(tag, f"languages.{index}")] = None
    return tuple(seen)


async def known_specializations(session: AsyncSession) -> set[str]:
    """The admin-managed list of specialisations."""
    return set((await session.exec(select(Specialization.name))).all())


async def add_specialization(session: AsyncSession, name: str) -> str:
    """Add a specialisation to the list (idempotent); returns its normalised name."""
    name = name.strip().lower()
    if await session.get(Specialization, name) is None:
        session.add(Specialization(name=name))
        await session.flush()
    return name


async def upsert_profile(
    session: AsyncSession, user_id: str, data: ProfileData, now: datetime
) -> tuple[Interpreter, bool]:
    """Create or replace the profile of an interpreter user, or the in-house profile of a
    colleague of another role; True when anything changed."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    pool_id = await _profile_pool(session, user, data.pool_id)
    unknown = set(data.specializations) - await known_specializations(session)
    if unknown:
        raise UnknownSpecialization(
            f"Unknown specialisation: {', '.join(sorted(unknown))}.", field="specializations"
        )
    interpreter = await session.get(Interpreter, user_id)
    changed = False
    if interpreter is None:
        interpreter = Interpreter(
            user_id=user_id,
            number=await naming.next_interpreter_number(session),
            status_changed_at=now,
            idle_since=now,
        )
        changed = True
    if (interpreter.gender, interpreter.agency) != (data.gender, data.agency):
        interpreter.gender, interpreter.agency = data.gender, data.agency
        changed = True
    if pool_id is not None and interpreter.pool_id != pool_id:
        interpreter.pool_id = pool_id
        changed = True
    session.add(interpreter)
    await session.flush()
    current_langs = (await _languages_of(session, [user_id]))[user_id]
    if set(current_langs) != set(data.languages):
        await session.exec(
            delete(InterpreterLanguage).where(col(InterpreterLanguage.interpreter_id) == user_id)
        )
        session.add_all(InterpreterLanguage(interpreter_id=user_id, tag=t) for t in data.languages)
        changed = True
    current_specs = (await _specializations_of(session, [user_id]))[user_id]
    if set(current_specs) != set(data.specializations):
        await session.exec(
            delete(InterpreterSpecialization).where(
                col(InterpreterSpecialization.interpreter_id) == user_id
            )
        )
        session.add_all(
            InterpreterSpecialization(interpreter_id=user_id, specialization=s)
            for s in data.specializations
        )
        changed = True
    await session.flush()
    return interpreter, changed


async def pool_organization(session: AsyncSession) -> str | None:
    """The interpreter pool: the organisation most interpreters belong to (the oldest among
    equals); None while there are no interpreters."""
    found = (
        await session.exec(
            select(User.organization_id)
            .join(Organization, col(Organization.id) == User.organization_id)
            .where(User.role == Role.INTERPRETER)
            .group_by(col(User.organization_id), col(Organization.created_at))
            .order_by(func.count().desc(), col(Organization.created_at), col(User.organization_id))
            .limit(1)
        )
    ).first()
    return found


@dataclass(frozen=True)
class NewInterpreter:
    """A person with their interpreter profile, as an admin adds them in one step."""

    username: str
    display_name: str
    email: str | None
    organization_id: str | None
    """None: the interpreter pool (`pool_organization`)."""
    profile: ProfileData


async def add_interpreter(
    session: AsyncSession,
    new: NewInterpreter,
    who: Actor,
    fallback_organization_id: str,
    now: datetime,
    link_valid_s: int,
) -> tuple[Interpreter, NewLink]:
    """Add the user, their profile and a one-time password link in the caller's one
    transaction: when any part is refused (a taken username, an unknown specialisation),
    the caller's rollback leaves nothing behind. Without an organisation they join the
    pool, or `fallback_organization_id` while there is none."""
    org_id = new.organization_id or await pool_organization(session) or fallback_organization_id
    user = await accounts.create_user(
        session,
        username=new.username,
        # No password until they set one through the link.
        password_hash=accounts.NO_PASSWORD,
        display_name=new.display_name,
        role=Role.INTERPRETER,
        organization_id=org_id,
        email=new.email,
        now=now,
    )
    interpreter, _ = await upsert_profile(session, user.id, new.profile, now)
    await audit.record(
        session, who, Action.USER_CREATED, now, user_target(user), role="interpreter"
    )
    await audit.record(
        session,
        who,
        Action.INTERPRETER_CHANGED,
        now,
        user_target(user),
        languages=list(new.profile.languages),
        gender=new.profile.gender,
        specializations=list(new.profile.specializations),
    )
    link = await password_links.create_link(session, user.id, who, now, link_valid_s)
    return interpreter, link


async def edit_interpreter(
    session: AsyncSession, user_id: str, display_name: str | None, email: str | None
) -> None:
    """Change an interpreter's name and e-mail (None: unchanged), in the caller's
    transaction with the profile."""
    if display_name is None and email is None:
        return
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if user.role != Role.INTERPRETER:
        raise NotAnInterpreterUser(field="user_id")
    if display_name is not None:
        user.display_name = display_name.strip()
    if email is not None:
        user.email = email.strip() or None
    session.add(user)


async def set_active(
    session: AsyncSession, user_id: str, active: bool, now: datetime
) -> Interpreter:
    """Activate or deactivate a profile; a deactivated interpreter goes offline."""
    interpreter = await session.get(Interpreter, user_id)
    if interpreter is None:
        raise NotFound("No interpreter profile for this user.")
    interpreter.active = active
    if not active and interpreter.status != Presence.BUSY:
        await presence.record_online(session, [user_id], interpreter.status, Presence.OFFLINE, now)
        interpreter.status = Presence.OFFLINE
        interpreter.status_changed_at = now
    session.add(interpreter)
    await session.flush()
    return interpreter


async def _languages_of(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[str]]:
    """Each interpreter's language tags, in order."""
    return await _listed(session, InterpreterLanguage.interpreter_id, InterpreterLanguage.tag, ids)


async def _specializations_of(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[str]]:
    """Each interpreter's specialisations, in order."""
    return await _listed(
        session,
        InterpreterSpecialization.interpreter_id,
        InterpreterSpecialization.specialization,
        ids,
    )


async def _listed(
    session: AsyncSession, owner: Any, value: Any, ids: Sequence[str]
) -> dict[str, list[str]]:
    """The values of a column per interpreter, in order (`owner` names the interpreter)."""
    found: dict[str, list[str]] = defaultdict(list)
    if ids:
        rows = await session.exec(select(owner, value).where(col(owner).in_(ids)).order_by(value))
        for interpreter_id, item in rows.all():
            found[interpreter_id].append(item)
    return found


async def own_view(session: AsyncSession, user_id: str, locale: str = "de") -> InterpreterView:
    """The profile an interpreter sees of themselves."""
    row = (
        await session.exec(
            select(Interpreter, User)
            .join(User, col(User.id) == col(Interpreter.user_id))
            .where(col(Interpreter.user_id) == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("No interpreter profile for this user.")
    interpreter, user = row
    return InterpreterView(
        id=user.id,
        display_name=user.display_name,
        languages=[
            LanguageView(tag=t, name=display_name(t, locale))
            for t in (await _languages_of(session, [user_id]))[user_id]
        ],
        status=interpreter.status,
    )


async def list_profiles(
    session: AsyncSession,
    *,
    language: str | None = None,
    status: Presence | None = None,
    active: bool | None = None,
    locale: str = "de",
    user_ids: Sequence[str] | None = None,
) -> list[InterpreterDetail]:
    """Profiles with filters, by display name (language filter follows the variant rule)."""
    query = select(Interpreter, User).join(User, col(User.id) == col(Interpreter.user_id))
    if status is not None:
        query = query.where(col(Interpreter.status) == status)
    if active is not None:
        query = query.where(col(Interpreter.active) == active)
    if user_ids is not None:
        query = query.where(col(Interpreter.user_id).in_(user_ids))
    rows = (await session.exec(query.order_by(col(User.display_name)))).all()
    ids = [i.user_id for i, _ in rows]
    langs = await _languages_of(session, ids)
    specs = await _specializations_of(session, ids)
    wanted = normalize_tag(language) if language else None
    return [
        _detail(interpreter, user, langs[user.id], specs[user.id], locale)
        for interpreter, user in rows
        if wanted is None or serving_tags(wanted, set(langs[user.id]))
    ]


def _detail(
    interpreter: Interpreter, user: User, tags: list[str], specs: list[str], locale: str
) -> InterpreterDetail:
    # Both have `active`: the profile's is shown as such, the user's as `user_active`.
    return made_from(
        InterpreterDetail,
        user,
        interpreter,
        user_active=user.active,
        languages=[LanguageView(tag=t, name=display_name(t, locale)) for t in tags],
        specializations=specs,
    )


@dataclass(frozen=True)
class LanguageCounts:
    """Interpreters who can serve a language: online (not offline) and available now."""

    online: int
    available: int


def _active_languages(query: Any) -> Any:
    """`query` over interpreters' languages, narrowed to active interpreters with an active
    login."""
    # Any: a select of whichever columns the caller names.
    return (
        query.join(Interpreter, col(Interpreter.user_id) == col(InterpreterLanguage.interpreter_id))
        .join(User, col(User.id) == col(Interpreter.user_id))
        .where(col(Interpreter.active), col(User.active))
    )


async def language_counts(session: AsyncSession) -> dict[str, LanguageCounts]:
    """Per roster language, how many active interpreters who can serve it are online and
    available; an interpreter of `ar-SY` counts for `ar` too (the variant rule)."""
    # The rule pairs the roster's few tags here; the database counts the interpreters, so
    # that thousands of them online do not pass through Python every few seconds.
    roster = (
        await session.exec(_active_languages(select(InterpreterLanguage.tag).distinct()))
    ).all()
    tags = set(roster)
    if not tags:
        return {}
    served = union_all(
        *(
            select(literal(tag).label("tag"), literal(other).label("serving"))
            for tag in sorted(tags)
            for other in serving_tags(tag, tags)
        )
    ).subquery("served")
    user_id, status = col(Interpreter.user_id), col(Interpreter.status)
    query = _active_languages(
        select(
            served.c.tag,
            func.count(distinct(case((status != Presence.OFFLINE, user_id)))),
            func.count(distinct(case((status == Presence.AVAILABLE, user_id)))),
        )
        .select_from(served)
        .join(InterpreterLanguage, col(InterpreterLanguage.tag) == served.c.serving)
    ).group_by(served.c.tag)
    rows = (await session.exec(query)).all()
    return {
        tag: LanguageCounts(online=online, available=available) for tag, online, available in rows
    }


async def roster_speaks(session: AsyncSession, tag: str) -> bool:
    """Whether any active interpreter can serve this (normalised) language."""
    tags = set(
        (
            await session.exec(
                select(InterpreterLanguage.tag)
                .join(
                    Interpreter, col(Interpreter.user_id) == col(InterpreterLanguage.interpreter_id)
                )
                .where(col(Interpreter.active))
                .distinct()
            )
        ).all()
    )
    return bool(serving_tags(tag, tags))


async def language_names(session: AsyncSession, locale: str) -> list[LanguageName]:
    """The roster's languages by name and own name only, sorted by own name: what an invited
    client may see (who is online, and how many, stays with staff)."""
    tags = (await session.exec(_active_languages(select(InterpreterLanguage.tag)).distinct())).all()
    names = [LanguageName(tag=t, name=display_name(t, locale), autonym=autonym(t)) for t in tags]
    return sorted(names, key=lambda n: n.autonym.casefold())


async def has_active_profile(db: Database, user_id: str) -> bool:
    """Whether the user has an active interpreter profile (so may act as an interpreter)."""
    async with db.read() as session:
        found = await session.exec(
            select(Interpreter.user_id)
            .where(col(Interpreter.user_id) == user_id)
            .where(col(Interpreter.active).is_(True))
        )
        return found.first() is not None
