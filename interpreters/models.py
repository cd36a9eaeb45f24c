"""Tables of the roster and of presence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from infra.db import UTCDateTime, str_enum
from infra.ids import new_id
from wire.objects import Presence as Presence  # on the wire as it is in the table


class PoolTier(StrEnum):
    """Who is asked first: the centre's own staff, then external interpreters."""

    IN_HOUSE = "in_house"
    EXTERNAL = "external"


TIER_ORDER: tuple[PoolTier, ...] = (PoolTier.IN_HOUSE, PoolTier.EXTERNAL)
"""The tiers in the order a request reaches them."""
EXTERNAL_POOL = "external"
"""The pool every interpreter joins unless an admin names another (made by a migration)."""
IN_HOUSE_POOL = "in_house"
"""The pool of staff who interpret for their colleagues (made by a migration)."""


class InterpreterPool(SQLModel, table=True):
    """A pool of interpreters: its tier decides when it is asked, its escalation time how
    long a request waits for it before the next tier is asked too."""

    __tablename__ = "interpreter_pool"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=100, sa_column_kwargs={"unique": True})
    tier: PoolTier = Field(sa_column=Column(str_enum(PoolTier), nullable=False))
    escalation_s: int = 20


class Interpreter(SQLModel, table=True):
    """The interpreter profile of an interpreter user, with its live presence."""

    __tablename__ = "interpreter"
    # Dispatch walks available interpreters in longest-idle order without a full scan. The
    # one index on status: with a second on status alone, statistics taken while most were
    # offline led PostgreSQL to read every available interpreter and sort them instead.
    __table_args__ = (Index("ix_interpreter_status_idle", "status", "idle_since"),)

    user_id: str = Field(foreign_key="user_account.id", primary_key=True, max_length=32)
    number: int | None = Field(default=None, index=True, unique=True)
    """A short reference given when the profile is made (1, 2, ...), never given again;
    counsellors see it instead of the name when the centre says so."""
    gender: str | None = Field(default=None, max_length=20)
    agency: str | None = Field(default=None, max_length=200)
    active: bool = True
    pool_id: str = Field(
        default=EXTERNAL_POOL,
        foreign_key="interpreter_pool.id",
        max_length=32,
        index=True,
        sa_column_kwargs={"server_default": text(f"'{EXTERNAL_POOL}'")},
    )
    status: Presence = Field(
        default=Presence.OFFLINE, sa_column=Column(str_enum(Presence), nullable=False)
    )
    status_changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    idle_since: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    """The end of the last call (or when the profile was made); status toggles leave it."""
    missed_offers: int = 0
    wrap_up_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    offline_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    """When the grace period after the last socket closed runs out; null while connected."""


class ShownAs(StrEnum):
    """What counsellors see of the interpreter in a call."""

    NAME = "name"
    NUMBER = "number"


class RosterSetting(SQLModel, table=True):
    """The roster's centre-wide settings: one row (id 1), changed by admins."""

    __tablename__ = "roster_setting"

    id: int = Field(default=1, primary_key=True)
    interpreter_shown_as: ShownAs = Field(
        default=ShownAs.NAME, sa_column=Column(str_enum(ShownAs), nullable=False)
    )
    last_interpreter_number: int = 0
    """The number given to the newest profile; the next one gets one more."""


class InterpreterLanguage(SQLModel, table=True):
    """One language (a normalised BCP 47 tag) an interpreter speaks."""

    __tablename__ = "interpreter_language"

    interpreter_id: str = Field(
        foreign_key="interpreter.user_id", primary_key=True, max_length=32, ondelete="CASCADE"
    )
    tag: str = Field(primary_key=True, max_length=35, index=True)


class Specialization(SQLModel, table=True):
    """An entry of the admin-managed list of specialisations (social, medical, ...)."""

    __tablename__ = "specialization"

    name: str = Field(primary_key=True, max_length=50)


class InterpreterSpecialization(SQLModel, table=True):
    """A specialisation an interpreter holds."""

    __tablename__ = "interpreter_specialization"

    interpreter_id: str = Field(
        foreign_key="interpreter.user_id", primary_key=True, max_length=32, ondelete="CASCADE"
    )
    specialization: str = Field(foreign_key="specialization.name", primary_key=True, max_length=50)


class PresenceSocket(SQLModel, table=True):
    """An open socket of an interpreter on some instance; several tabs count as one presence.

    Alive as long as its instance's heartbeat (`PresenceInstance`) is fresh: one row per
    instance is refreshed, not one per socket.
    """

    __tablename__ = "presence_socket"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    interpreter_id: str = Field(
        foreign_key="interpreter.user_id", index=True, max_length=32, ondelete="CASCADE"
    )
    instance_id: str = Field(max_length=64, index=True)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PresenceInstance(SQLModel, table=True):
    """A server instance holding presence sockets, and when it last said it is alive."""

    __tablename__ = "presence_instance"

    instance_id: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PresenceInterval(SQLModel, table=True):
    """A stretch of time an interpreter was online (any status but offline), for the
    statistics of online hours; the open one has no end yet."""

    __tablename__ = "presence_interval"
    __table_args__ = (Index("ix_presence_interval_started_at", "started_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    interpreter_id: str = Field(
        foreign_key="interpreter.user_id", index=True, max_length=32, ondelete="CASCADE"
    )
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
