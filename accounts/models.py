"""Tables of the accounts package. They never go on the wire; see `accounts.views`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra.db import UTCDateTime, str_enum
from infra.ids import new_id


class Role(StrEnum):
    """A user's one role."""

    COUNSELLOR = "counsellor"
    INTERPRETER = "interpreter"
    FINANCE = "finance"
    ADMIN = "admin"
    MANAGEMENT = "management"
    """The centre's management ("Leitung"): reads the service-level figures, changes nothing."""
    GUEST = "guest"
    """A client invited into one consultation room by link: no account, no user row."""
    TERMINAL = "terminal"
    """A self-service terminal at a site: a device account that asks for interpreters for
    its organisation and takes part in its own calls, nothing else (accounts.terminals)."""


REQUESTERS = (Role.COUNSELLOR, Role.TERMINAL)
"""The roles that ask for interpreters: the counsellor's side of a call."""


class Organization(SQLModel, table=True):
    """A cost centre that is billed for its counsellors' requests."""

    __tablename__ = "organization"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    cost_center: str = Field(default="", max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Site(SQLModel, table=True):
    """A place of an organisation where counsellors (and terminals) work: a centre, an
    Infopoint. Its time zone is an IANA name; a deactivated site takes no new users."""

    __tablename__ = "site"
    __table_args__ = (
        UniqueConstraint("organization_id", "name", name="uq_site_organization_name"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    organization_id: str = Field(foreign_key="organization.id", index=True, max_length=32)
    name: str = Field(max_length=200)
    address: str = Field(default="", max_length=500)
    time_zone: str = Field(max_length=64)
    active: bool = True
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class User(SQLModel, table=True):
    """Someone who logs in: a counsellor, interpreter, finance clerk or admin."""

    __tablename__ = "user_account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    username: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=255)
    display_name: str = Field(max_length=200)
    role: Role = Field(sa_column=Column(str_enum(Role), nullable=False))
    organization_id: str = Field(foreign_key="organization.id", index=True, max_length=32)
    email: str | None = Field(default=None, max_length=320)
    active: bool = True
    machine: bool = False
    """A machine account: a program's, logs in only with API tokens, never a password."""
    site_id: str | None = Field(default=None, foreign_key="site.id", index=True, max_length=32)
    """Where a counsellor (or terminal) works; interpreters need none."""
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LoginSession(SQLModel, table=True):
    """A server-side cookie session; only the SHA-256 of the cookie value is stored."""

    __tablename__ = "login_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    device: bool = False
    """A terminal's device session: no idle timeout, only `expires_at` (accounts.terminals)."""


class ApiToken(SQLModel, table=True):
    """A bearer token for a machine client, scoped to one user; stored as a SHA-256.

    It acts as its user, limited to `scopes` (space-separated, see `accounts.scopes`), and
    stops working at `expires_at`, at revocation, or when its user is deactivated or
    their password changes (both revoke it).
    """

    __tablename__ = "api_token"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str | None = Field(default=None, max_length=32)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    scopes: str = Field(default="*", max_length=500)
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class PasswordLink(SQLModel, table=True):
    """A one-time link an admin hands over: a person's "set your password" link, or a
    terminal's device link (accounts.terminals). Only a SHA-256 of its secret is stored;
    it works once, until `expires_at`, and a newer link of the same user replaces it."""

    __tablename__ = "password_link"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str | None = Field(default=None, max_length=32)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AuditEvent(SQLModel, table=True):
    """One security event: who did what, when, from where, to which target. No secrets."""

    __tablename__ = "audit_event"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    action: str = Field(max_length=40, index=True)
    actor_id: str | None = Field(default=None, max_length=32, index=True)
    actor_name: str = Field(default="", max_length=100)
    actor_role: str = Field(default="", max_length=20)
    via: str = Field(default="", max_length=10)
    address: str = Field(default="", max_length=64)
    target_type: str = Field(default="", max_length=30)
    target_id: str = Field(default="", max_length=64, index=True)
    target_name: str = Field(default="", max_length=200)
    details: str = Field(default="{}", max_length=4000)


class GuestSession(SQLModel, table=True):
    """A guest's cookie session, bound to one consultation room; only the SHA-256 of the
    cookie value is stored. It ends with the room."""

    __tablename__ = "guest_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    guest_id: str = Field(max_length=32, sa_column_kwargs={"unique": True})
    """The guest's participant id (`g…`), never a user id."""
    room_id: str = Field(max_length=32, index=True)
    organization_id: str = Field(max_length=32)
    """The room's counsellor's organisation."""
    display_name: str = Field(max_length=100)
    language: str | None = Field(default=None, max_length=35)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
