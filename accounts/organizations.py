"""Organisations as an admin adds them: one of each name, and the event it leaves."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from accounts import service
from accounts.audit import Action, AuditedChange, Target
from accounts.errors import OrganizationExists
from accounts.models import Organization


async def add_organization(change: AuditedChange, name: str, cost_center: str) -> Organization:
    """Add an organisation whose name no other has (409 otherwise)."""
    if await service.find_organization_by_name(change.session, name) is not None:
        raise OrganizationExists(field="name")
    try:
        org = await service.create_organization(change.session, name, cost_center, change.now)
    except IntegrityError:  # the same name added at the same moment by another request
        raise OrganizationExists(field="name") from None
    await change.record(
        Action.ORGANIZATION_CREATED,
        Target("organization", org.id, org.name),
        cost_center=org.cost_center,
    )
    return org
