"""Organisations as an admin adds them: one of each name, and the event it leaves."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from accounts import service
from accounts.audit import Action, Actor, Target, audited
from accounts.errors import OrganizationExists
from accounts.models import Organization
from infra.clock import Clock
from infra.db import Database


async def add_organization(
    db: Database, clock: Clock, name: str, cost_center: str, who: Actor
) -> Organization:
    """Add an organisation whose name no other has (409 otherwise)."""
    try:
        async with audited(db, clock, who) as change:
            if await service.find_organization_by_name(change.session, name) is not None:
                raise OrganizationExists(field="name")
            org = await service.create_organization(change.session, name, cost_center, change.now)
            await change.record(
                Action.ORGANIZATION_CREATED,
                Target("organization", org.id, org.name),
                cost_center=org.cost_center,
            )
    except IntegrityError:  # the same name added at the same moment by another request
        raise OrganizationExists(field="name") from None
    return org
