"""Whose usage a caller may see: admins every organisation's, a finance user their own
organisation's and those an admin granted them (or all, by a grant of every organisation).
Services take the session and never commit."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.errors import UnknownOrganization
from accounts.models import Organization, Role, User
from accounts.views import Identity, OrganizationView
from billing.export import UsageFilter
from billing.models import FinanceGrant
from infra.errors import Forbidden, InvalidInput, NotFound


class OrganizationNotGranted(Forbidden):
    code = "organization_not_granted"
    default_message = "You may not see this organisation's usage; an admin can grant it."


class NotAFinanceUser(InvalidInput):
    code = "not_a_finance_user"
    default_message = "Grants are for users with the finance role."


class GrantNotFound(NotFound):
    code = "not_found"
    default_message = "No such grant."


@dataclass(frozen=True)
class UsageScope:
    """The organisations whose usage may be seen; `None`: every organisation."""

    organizations: frozenset[str] | None

    def restrict(self, usage: UsageFilter) -> UsageFilter:
        """`usage` limited to this scope; 403 when it asks for an organisation outside."""
        if self.organizations is None:
            return usage
        if usage.organization_id is not None:
            if usage.organization_id not in self.organizations:
                raise OrganizationNotGranted()
            return usage
        return replace(usage, organizations=tuple(sorted(self.organizations)))


async def usage_scope(session: AsyncSession, identity: Identity) -> UsageScope:
    """What `identity` may see of usage (admins everything; finance own plus grants)."""
    if identity.role == Role.ADMIN:
        return UsageScope(None)
    granted = (
        await session.exec(
            select(FinanceGrant.organization_id).where(FinanceGrant.user_id == identity.user_id)
        )
    ).all()
    if any(org is None for org in granted):
        return UsageScope(None)
    return UsageScope(frozenset({identity.organization_id, *(o for o in granted if o)}))


async def list_grants(session: AsyncSession, user_id: str | None = None) -> list[FinanceGrant]:
    """Grants, of one user if given, oldest first."""
    query = select(FinanceGrant).order_by(col(FinanceGrant.created_at), col(FinanceGrant.id))
    if user_id is not None:
        query = query.where(FinanceGrant.user_id == user_id)
    return list((await session.exec(query)).all())


async def grant(
    session: AsyncSession,
    user_id: str,
    organization_id: str | None,
    granted_by: str | None,
    now: datetime,
) -> tuple[FinanceGrant, bool]:
    """Let a finance user see an organisation's usage (None: every organisation); returns
    the grant and whether it is new (granting twice changes nothing)."""
    user = await session.get(User, user_id)
    if user is None or user.role != Role.FINANCE:
        raise NotAFinanceUser(field="user_id")
    if organization_id is not None and await session.get(Organization, organization_id) is None:
        raise UnknownOrganization(field="organization_id")
    existing = await _find(session, user_id, organization_id)
    if existing is not None:
        return existing, False
    new = FinanceGrant(
        user_id=user_id, organization_id=organization_id, granted_by=granted_by, created_at=now
    )
    try:
        # A savepoint: the same grant made at the same moment elsewhere is no error.
        async with session.begin_nested():
            session.add(new)
    except IntegrityError:
        found = await _find(session, user_id, organization_id)
        if found is None:
            raise
        return found, False
    return new, True


async def _find(
    session: AsyncSession, user_id: str, organization_id: str | None
) -> FinanceGrant | None:
    same_org = (
        col(FinanceGrant.organization_id).is_(None)
        if organization_id is None
        else FinanceGrant.organization_id == organization_id
    )
    found = await session.exec(
        select(FinanceGrant).where(FinanceGrant.user_id == user_id, same_org)
    )
    return found.first()


async def revoke(session: AsyncSession, grant_id: str) -> FinanceGrant:
    """Withdraw a grant (404 if there is none)."""
    found = await session.get(FinanceGrant, grant_id)
    if found is None:
        raise GrantNotFound()
    await session.delete(found)
    return found


class GrantView(BaseModel):
    """A grant as the admin API shows it; `organization_id` null: every organisation."""

    id: str
    user_id: str
    organization_id: str | None
    organization: str | None
    """The organisation's name; null for a grant of every organisation."""
    granted_by: str | None
    created_at: datetime


class ScopeView(BaseModel):
    """What the caller sees of usage: every organisation, or these."""

    all: bool
    organizations: list[OrganizationView]


async def grant_views(session: AsyncSession, grants: list[FinanceGrant]) -> list[GrantView]:
    """Grants with their organisations' names."""
    ids = {g.organization_id for g in grants if g.organization_id}
    names = await _names(session, ids)
    return [
        GrantView(
            id=g.id,
            user_id=g.user_id,
            organization_id=g.organization_id,
            organization=names.get(g.organization_id) if g.organization_id else None,
            granted_by=g.granted_by,
            created_at=g.created_at,
        )
        for g in grants
    ]


async def scope_view(session: AsyncSession, scope: UsageScope) -> ScopeView:
    """The scope with organisation names, by name."""
    if scope.organizations is None:
        return ScopeView(all=True, organizations=[])
    names = await _names(session, set(scope.organizations))
    orgs = [OrganizationView(id=i, name=n) for i, n in names.items()]
    return ScopeView(all=False, organizations=sorted(orgs, key=lambda o: o.name))


async def _names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.exec(
        select(Organization.id, Organization.name).where(col(Organization.id).in_(ids))
    )
    return dict(rows.all())
