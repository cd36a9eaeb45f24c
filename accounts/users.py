"""Adding and changing users as an admin does: the password rules, what ends a user's
sessions and tokens, and the security events each change leaves."""

from __future__ import annotations

from dataclasses import dataclass

from accounts import service, sites
from accounts.audit import Action, Actor, audited, user_target
from accounts.errors import WeakPassword
from accounts.models import Organization, Role, User
from accounts.passwords import hash_password, password_problem
from infra.clock import Clock
from infra.db import Database
from infra.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user as an admin describes them; `password` is None for a machine account."""

    username: str
    password: str | None
    display_name: str
    role: Role
    organization_id: str
    email: str | None
    machine: bool
    site_id: str | None = None


@dataclass(frozen=True, slots=True)
class UserChanges:
    """What an admin changes of a user; None leaves a field as it is, but `site_id` is
    set (None: no site) whenever `set_site` is."""

    display_name: str | None = None
    active: bool | None = None
    password: str | None = None
    site_id: str | None = None
    set_site: bool = False


@dataclass(frozen=True, slots=True)
class ChangedUser:
    """A user after a change, whether their sessions and tokens were ended by it, and
    whether the change deactivated them (also when they were inactive already)."""

    user: User
    organization: Organization
    credentials_ended: bool
    deactivated: bool = False


async def add_user(
    db: Database, clock: Clock, new: NewUser, who: Actor, min_password_length: int
) -> tuple[User, Organization]:
    """Add a user (a machine account has no password; a person needs a strong one)."""
    if new.machine:
        if new.password is not None:
            raise WeakPassword("a machine account has no password", field="password")
        password_hash = service.NO_PASSWORD
    else:
        if new.password is None:
            raise InvalidInput(
                "password: required", fields=[{"field": "password", "problem": "required"}]
            )
        check_password(new.password, new.username, min_password_length)
        password_hash = await hash_password(new.password)
    async with audited(db, clock, who) as change:
        session = change.session
        user = await service.create_user(
            session,
            username=new.username,
            password_hash=password_hash,
            display_name=new.display_name,
            role=new.role,
            organization_id=new.organization_id,
            email=new.email,
            now=change.now,
            machine=new.machine,
        )
        if new.site_id is not None:
            user.site_id = (
                await sites.site_for_user(session, new.site_id, user.organization_id)
            ).id
            session.add(user)
        org = await service.get_organization(session, user.organization_id)
        await change.record(
            Action.USER_CREATED,
            user_target(user),
            role=user.role.value,
            organization_id=org.id,
            machine=user.machine,
            site_id=user.site_id,
        )
    return user, org


async def change_user(
    db: Database,
    clock: Clock,
    user_id: str,
    changes: UserChanges,
    who: Actor,
    min_password_length: int,
) -> ChangedUser:
    """Rename, deactivate, reactivate or set a new password; deactivation and a new password
    end the user's sessions and tokens."""
    password_hash = None
    if changes.password is not None:
        async with db.read() as session:
            user = await service.get_user(session, user_id)
        if user.machine:
            raise WeakPassword("a machine account has no password", field="password")
        check_password(changes.password, user.username, min_password_length)
        password_hash = await hash_password(changes.password)
    async with audited(db, clock, who) as change:
        session = change.session
        user = await service.get_user(session, user_id)
        if changes.set_site and changes.site_id is not None:
            await sites.site_for_user(session, changes.site_id, user.organization_id)
        target = user_target(user)
        events = _apply(user, changes, password_hash)
        session.add(user)
        ended = changes.active is False or password_hash is not None
        if ended:
            revoked = await service.end_user_credentials(session, user.id, change.now)
            if revoked:
                events.append((Action.TOKEN_REVOKED, {"tokens": revoked, "reason": "credentials"}))
        for action, details in events:
            await change.record(action, target, **details)
        org = await service.get_organization(session, user.organization_id)
    return ChangedUser(user, org, ended, deactivated=changes.active is False)


def _apply(
    user: User, changes: UserChanges, password_hash: str | None
) -> list[tuple[Action, dict[str, object]]]:
    """Change the row; the events that tell what changed."""
    events: list[tuple[Action, dict[str, object]]] = []
    if changes.display_name is not None and changes.display_name.strip() != user.display_name:
        user.display_name = changes.display_name.strip()
        events.append((Action.USER_CHANGED, {"display_name": user.display_name}))
    if changes.set_site and changes.site_id != user.site_id:
        user.site_id = changes.site_id
        events.append((Action.USER_CHANGED, {"site_id": user.site_id}))
    if password_hash is not None:
        user.password_hash = password_hash
        events.append((Action.PASSWORD_CHANGED, {}))
    if changes.active is not None and changes.active != user.active:
        user.active = changes.active
        events.append((Action.USER_REACTIVATED if changes.active else Action.USER_DEACTIVATED, {}))
    return events


def check_password(password: str, username: str, min_length: int) -> None:
    """Refuse (422) a password that is too weak for this user."""
    problem = password_problem(password, min_length, username)
    if problem:
        raise WeakPassword(f"password {problem}", field="password")
