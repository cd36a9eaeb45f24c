"""Tables of billing: tariffs, one usage record per billed call, and the export audit log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Date, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from infra.db import UTCDateTime
from infra.ids import new_id


class Tariff(SQLModel, table=True):
    """A price list: per organisation (null = the default) and optionally per language group."""

    __tablename__ = "tariff"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    organization_id: str | None = Field(
        default=None, foreign_key="organization.id", index=True, max_length=32
    )
    languages: str | None = Field(default=None, max_length=500)
    """Space-separated language tags this tariff applies to; null for every language."""
    unit_s: int = 60
    minimum_s: int = 0
    price_per_unit_cents: int = 0
    currency: str = Field(default="EUR", max_length=3)
    valid_from: date = Field(sa_column=Column(Date(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    in_house: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    """Bills the calls interpreted by in-house staff, and only those."""


class UsageRecord(SQLModel, table=True):
    """The billed facts of one ended call, written once when it ends and never recomputed."""

    __tablename__ = "usage_record"

    # No foreign key: the record is an accounting record kept for years, long after the
    # call it bills has been deleted with the other operational data (see retention).
    call_id: str = Field(primary_key=True, max_length=32)
    connected_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    ended_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    duration_s: int
    billable_s: int
    amount_cents: int
    currency: str = Field(max_length=3)
    language: str = Field(max_length=35, index=True)
    organization_id: str = Field(max_length=32, index=True)
    organization: str = Field(max_length=200)
    cost_center: str = Field(max_length=64)
    counsellor_id: str = Field(max_length=32)
    interpreter_id: str = Field(max_length=32, index=True)
    interpreter: str = Field(max_length=200)
    tariff_id: str | None = Field(default=None, max_length=32)
    tariff: str = Field(max_length=100)
    end_reason: str = Field(max_length=30)
    room_id: str | None = Field(default=None, max_length=32, index=True)
    """The consultation whose interpreter segment this record bills, if any."""
    site_id: str | None = Field(default=None, max_length=32, index=True)
    """The site of the call's request (no foreign key, like the organisation's)."""
    site: str = Field(default="", max_length=200)
    """The site's name when the call was billed ("" for none)."""
    in_house: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    """Interpreted by a colleague of the in-house pool tier (a staff call)."""


class ExportAudit(SQLModel, table=True):
    """Who exported which usage, when, and how many rows."""

    __tablename__ = "export_audit"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str | None = Field(default=None, max_length=32)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    format: str = Field(max_length=10)
    filters: str = Field(max_length=2000)
    rows: int = 0


class FinanceGrant(SQLModel, table=True):
    """An organisation whose usage a finance user may see beyond their own; an
    `organization_id` of null grants every organisation (the centre's finance office)."""

    __tablename__ = "finance_grant"
    __table_args__ = (
        UniqueConstraint("user_id", "organization_id", name="uq_finance_grant_user_org"),
        # NULLs are distinct in a unique constraint: one "every organisation" grant per user.
        Index(
            "uq_finance_grant_user_all",
            "user_id",
            unique=True,
            sqlite_where=text("organization_id IS NULL"),
            postgresql_where=text("organization_id IS NULL"),
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=32)
    organization_id: str | None = Field(default=None, foreign_key="organization.id", max_length=32)
    granted_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
