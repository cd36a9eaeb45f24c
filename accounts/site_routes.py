"""HTTP handlers of sites: admins list, add, rename, move, re-zone and deactivate them."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from accounts import sites
from accounts.access import ADMIN, audited_change
from accounts.models import Site
from accounts.sites import DEFAULT_TIME_ZONE, NewSite, SiteChanges, add_site, change_site
from accounts.views import Identity, SiteView
from infra.appkeys import DATABASE
from infra.openapi import ApiRoutes

api = ApiRoutes(tag="accounts")

# Trimmed before anything else: names are compared as they are stored.
SiteName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
ZoneName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SiteBody(BaseModel):
    organization_id: str = Field(min_length=1, max_length=32)
    name: SiteName
    address: Address = ""
    time_zone: ZoneName = DEFAULT_TIME_ZONE
    """An IANA time zone (422 `unknown_time_zone` otherwise)."""


class SiteUpdateBody(BaseModel):
    name: SiteName | None = None
    address: Address | None = None
    time_zone: ZoneName | None = None
    active: bool | None = None
    """False: no user can be put on the site any more; those on it stay."""


class SiteListQuery(BaseModel):
    organization_id: str | None = Field(default=None, min_length=1, max_length=32)


class SiteResponse(BaseModel):
    site: SiteView


class SiteList(BaseModel):
    sites: list[SiteView]


def _view(site: Site) -> SiteView:
    return SiteView.model_validate(site, from_attributes=True)


@api.get("/api/admin/sites", roles=ADMIN)
async def list_sites(request: web.Request, query: SiteListQuery) -> SiteList:
    """List sites (of one organisation)"""
    async with request.app[DATABASE].read() as session:
        rows = await sites.list_sites(session, query.organization_id)
    return SiteList(sites=[_view(s) for s in rows])


@api.post("/api/admin/sites", roles=ADMIN, status=201, errors=(409,))
async def create_site(request: web.Request, identity: Identity, body: SiteBody) -> SiteResponse:
    """Add a site to an organisation"""
    async with audited_change(request, identity) as change:
        site = await add_site(change, NewSite(**body.model_dump()))
    return SiteResponse(site=_view(site))


@api.patch("/api/admin/sites/{site_id}", roles=ADMIN, errors=(404, 409))
async def update_site(
    request: web.Request, identity: Identity, site_id: str, body: SiteUpdateBody
) -> SiteResponse:
    """Rename, move, set the time zone of, or deactivate a site"""
    async with audited_change(request, identity) as change:
        site = await change_site(change, site_id, SiteChanges(**body.model_dump()))
    return SiteResponse(site=_view(site))
