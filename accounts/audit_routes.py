"""HTTP handler of the security event log: admins read it, newest first, page by page."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from accounts import audit
from accounts.access import ADMIN
from accounts.audit import Action
from accounts.models import AuditEvent
from infra.appkeys import DATABASE
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="accounts")


class AuditQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    action: Action | None = None
    actor: str | None = Field(default=None, max_length=100, description="User id or username")
    target: str | None = Field(default=None, max_length=64, description="Target id")
    start: AwareDatetime | None = Field(default=None, alias="from")
    end: AwareDatetime | None = Field(default=None, alias="to", description="End, exclusive")
    before: str | None = Field(
        default=None, max_length=32, description="The last event id of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=500)


class AuditActorView(BaseModel):
    id: str | None
    username: str
    role: str
    via: str
    address: str


class AuditTargetView(BaseModel):
    type: str
    id: str
    name: str


class AuditEventView(BaseModel):
    id: str
    at: AwareDatetime
    action: str
    actor: AuditActorView
    target: AuditTargetView | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    events: list[AuditEventView]
    more: bool
    """Whether older events match: ask again with `before` = the last id."""


def _view(row: AuditEvent) -> AuditEventView:
    return AuditEventView(
        id=row.id,
        at=row.at,
        action=row.action,
        actor=AuditActorView(
            id=row.actor_id,
            username=row.actor_name,
            role=row.actor_role,
            via=row.via,
            address=row.address,
        ),
        target=AuditTargetView(type=row.target_type, id=row.target_id, name=row.target_name)
        if row.target_type
        else None,
        details=json.loads(row.details or "{}"),
    )


@api.get("/api/admin/audit", roles=ADMIN)
async def list_audit_events(request: web.Request, query: AuditQuery) -> AuditPage:
    """Read the security event log (newest first)"""
    async with request.app[DATABASE].read() as session:
        rows, more = await audit.list_events(session, audit.AuditFilter(**query.model_dump()))
    return AuditPage(events=[_view(r) for r in rows], more=more)
