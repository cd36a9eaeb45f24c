"""HTTP handlers of terminals: the admin adds, lists, revokes and re-links them; a device
logs in once with its link; the terminal's page reads what it needs about itself."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from accounts import terminals
from accounts.access import ADMIN, audited_change, client_address, own_origin, set_session_cookie
from accounts.hooks import user_deactivated
from accounts.models import Role, Site
from accounts.password_links import NewLink
from accounts.tokens import require_login
from accounts.views import Identity, OrganizationView, PasswordLinkView
from infra.appkeys import BUS, CLOCK, DATABASE, SETTINGS
from infra.bus import publish_control
from infra.http import json_response
from infra.openapi import PUBLIC, ApiRoutes

api = ApiRoutes(tag="accounts")
TERMINAL = (Role.TERMINAL,)


class TerminalBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    """What the admin and the interpreters see, e.g. "Foyer, Terminal 1"."""
    site_id: str = Field(min_length=1, max_length=32)
    """Where it stands: an active site; its calls are billed to the site's organisation."""


class SiteRef(BaseModel):
    id: str
    name: str


class TerminalView(BaseModel):
    id: str
    name: str
    organization: OrganizationView
    site: SiteRef | None
    active: bool
    """False once revoked (until a new device link)."""
    created_at: datetime
    logged_in: bool
    """A device holds a session of it."""
    last_seen_at: datetime | None
    link_expires_at: datetime | None
    """Until when its unused device link works (None: no link waiting)."""


class DeviceLinkView(PasswordLinkView):
    """A one-time device link as the admin sees it, once: open it on the terminal."""


class TerminalCreated(BaseModel):
    terminal: TerminalView
    link: DeviceLinkView


class TerminalResponse(BaseModel):
    terminal: TerminalView


class TerminalList(BaseModel):
    terminals: list[TerminalView]


class DeviceLinkResponse(BaseModel):
    link: DeviceLinkView


class DeviceLoginBody(BaseModel):
    token: str = Field(min_length=1, max_length=100)


class TerminalSelf(BaseModel):
    id: str
    name: str
    organization: OrganizationView
    site: SiteRef | None
    idle_reset_s: int
    """The page goes back to its start screen after this long without a touch (no call)."""


class TerminalSelfResponse(BaseModel):
    terminal: TerminalSelf


def _site(site: Site | None) -> SiteRef | None:
    return SiteRef(id=site.id, name=site.name) if site is not None else None


def _view(row: terminals.TerminalRow) -> TerminalView:
    user, org = row.user, row.organization
    return TerminalView(
        id=user.id,
        name=user.display_name,
        organization=OrganizationView(id=org.id, name=org.name),
        site=_site(row.site),
        active=user.active,
        created_at=user.created_at,
        logged_in=row.last_seen_at is not None,
        last_seen_at=row.last_seen_at,
        link_expires_at=row.link_expires_at,
    )


def _link_s(request: web.Request) -> int:
    return request.app[SETTINGS].terminal_link_hours * 3600


def _link_view(request: web.Request, link: NewLink) -> DeviceLinkView:
    return DeviceLinkView(
        url=terminals.device_url(own_origin(request), link), expires_at=link.expires_at
    )


@api.post("/api/admin/terminals", roles=ADMIN, status=201, errors=(403, 422))
async def create_terminal(
    request: web.Request, identity: Identity, body: TerminalBody
) -> TerminalCreated:
    """Add a self-service terminal; its one-time device link is shown once"""
    require_login(identity)
    async with audited_change(request, identity) as change:
        user, org, link = await terminals.add_terminal(
            change, body.name.strip(), body.site_id, _link_s(request)
        )
        site = await change.session.get(Site, body.site_id)
    row = terminals.TerminalRow(user, org, site, None, link.expires_at)
    return TerminalCreated(terminal=_view(row), link=_link_view(request, link))


@api.get("/api/admin/terminals", roles=ADMIN)
async def list_terminals(request: web.Request) -> TerminalList:
    """List terminals, whether a device is logged in and whether a link waits"""
    async with request.app[DATABASE].read() as session:
        rows = await terminals.list_terminals(session, request.app[CLOCK].now())
    return TerminalList(terminals=[_view(r) for r in rows])


@api.post("/api/admin/terminals/{terminal_id}/link", roles=ADMIN, status=201, errors=(403, 404))
async def reissue_link(
    request: web.Request, identity: Identity, terminal_id: str
) -> DeviceLinkResponse:
    """A new one-time device link (shown once); its use logs the old device out"""
    require_login(identity)
    async with audited_change(request, identity) as change:
        link = await terminals.issue_link(change, terminal_id, _link_s(request))
    return DeviceLinkResponse(link=_link_view(request, link))


@api.delete("/api/admin/terminals/{terminal_id}", roles=ADMIN, status=204, errors=(404,))
async def revoke_terminal(request: web.Request, identity: Identity, terminal_id: str) -> None:
    """Revoke a terminal: its device is logged out and its links open nothing"""
    async with audited_change(request, identity) as change:
        user = await terminals.revoke_terminal(change, terminal_id)
    await publish_control(request.app[BUS], user.id, "close", session=None, reason="deactivated")
    await user_deactivated(request.app, user.id)


@api.post("/api/terminal/session", roles=PUBLIC, response=TerminalSelfResponse)
async def device_login(request: web.Request, body: DeviceLoginBody) -> web.Response:
    """Log a terminal's device in with its one-time link (422 link_not_valid once spent)"""
    app = request.app
    settings = app[SETTINGS]
    session_s = settings.terminal_session_days * 86400
    done = await terminals.open_device_session(
        app[DATABASE], app[CLOCK], body.token, client_address(request), session_s
    )
    # One terminal, one device: the device this link replaces stops hearing its news.
    for key in done.replaced:
        await publish_control(app[BUS], done.user.id, "close", session=key, reason="replaced")
    terminal = TerminalSelf(
        id=done.user.id,
        name=done.user.display_name,
        organization=OrganizationView(id=done.organization.id, name=done.organization.name),
        site=_site(done.site),
        idle_reset_s=settings.terminal_idle_reset_s,
    )
    response = json_response({"terminal": terminal})
    set_session_cookie(request, response, done.cookie_value, session_s)
    return response


@api.get("/api/terminal/me", roles=TERMINAL)
async def terminal_me(request: web.Request, identity: Identity) -> TerminalSelfResponse:
    """The terminal itself, for its page"""
    site = None
    if identity.site_id is not None:
        async with request.app[DATABASE].read() as session:
            site = await session.get(Site, identity.site_id)
    terminal = TerminalSelf(
        id=identity.user_id,
        name=identity.display_name,
        organization=OrganizationView(id=identity.organization_id, name=identity.organization_name),
        site=_site(site),
        idle_reset_s=request.app[SETTINGS].terminal_idle_reset_s,
    )
    return TerminalSelfResponse(terminal=terminal)
