"""sites: an organisation's places (name, address, IANA time zone); every organisation gets
one named after it in Europe/Berlin, and its counsellors are put on it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 04:10:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import infra.db
from infra.ids import new_id

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "name", name="uq_site_organization_name"),
    )
    op.create_index("ix_site_organization_id", "site", ["organization_id"])
    # Inline, so that SQLite adds the column in place instead of rebuilding user_account,
    # which every session, token and call refers to.
    op.add_column(
        "user_account",
        sa.Column("site_id", sa.String(length=32), sa.ForeignKey("site.id"), nullable=True),
        inline_references=True,
    )
    op.create_index("ix_user_account_site_id", "user_account", ["site_id"])
    _default_sites()


def _default_sites() -> None:
    """One site per organisation, named after it, with its counsellors on it."""
    conn = op.get_bind()
    organization = sa.table("organization", sa.column("id"), sa.column("name"))
    site = sa.table(
        "site",
        sa.column("id"),
        sa.column("organization_id"),
        sa.column("name"),
        sa.column("address"),
        sa.column("time_zone"),
        sa.column("active"),
        sa.column("created_at", infra.db.UTCDateTime()),
    )
    user = sa.table(
        "user_account", sa.column("organization_id"), sa.column("role"), sa.column("site_id")
    )
    now = datetime.now(UTC)
    for org_id, name in conn.execute(sa.select(organization.c.id, organization.c.name)).all():
        site_id = new_id()
        conn.execute(
            site.insert().values(
                id=site_id,
                organization_id=org_id,
                name=name,
                address="",
                time_zone="Europe/Berlin",
                active=True,
                created_at=now,
            )
        )
        conn.execute(
            user.update()
            .where(user.c.organization_id == org_id, user.c.role == "counsellor")
            .values(site_id=site_id)
        )


def downgrade() -> None:
    op.drop_index("ix_user_account_site_id", table_name="user_account")
    with op.batch_alter_table("user_account") as batch_op:
        batch_op.drop_column("site_id")
    op.drop_index("ix_site_organization_id", table_name="site")
    op.drop_table("site")
