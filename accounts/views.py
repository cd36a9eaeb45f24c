"""What accounts put on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from accounts.models import Organization, Role, User
from infra.fields import made_from


class OrganizationView(BaseModel):
    id: str
    name: str


class OrganizationDetail(OrganizationView):
    cost_center: str


class SiteView(BaseModel):
    """A site as admins see it."""

    id: str
    organization_id: str
    name: str
    address: str
    time_zone: str
    """An IANA name (Europe/Berlin)."""
    active: bool
    created_at: datetime


class UserView(BaseModel):
    id: str
    username: str
    display_name: str
    role: Role
    organization: OrganizationView
    active: bool = True
    machine: bool = False
    site_id: str | None = None
    """The site a counsellor (or terminal) works at; none for most interpreters."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking: the user behind a session cookie or an API token."""

    user_id: str
    username: str
    display_name: str
    role: Role
    organization_id: str
    organization_name: str
    session_key: str | None = None
    """A non-secret key of the login session (None for API tokens), to close its sockets."""
    token_id: str | None = None
    """The API token this identity came from (None for login sessions)."""
    scopes: frozenset[str] | None = None
    """What an API token may be used for (None for login sessions: everything)."""
    room_id: str | None = None
    """A guest's one consultation room (None for users)."""
    language: str | None = None
    """A guest's chosen language."""
    site_id: str | None = None
    """The user's site (None: none set)."""

    def view(self) -> UserView:
        """The user as the contract shows it."""
        organization = OrganizationView(id=self.organization_id, name=self.organization_name)
        return made_from(UserView, self, id=self.user_id, organization=organization)


def user_view(user: User, organization: Organization) -> UserView:
    """A user row and its organisation as the contract shows them."""
    return made_from(UserView, user, organization=made_from(OrganizationView, organization))


class PasswordLinkView(BaseModel):
    """A one-time "set your password" link as the admin sees it, once."""

    url: str
    """Hand it to the user (in person, by phone, by a message you trust)."""
    expires_at: datetime
