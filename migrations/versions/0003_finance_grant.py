"""finance grants: which further organisations' usage a finance user may see

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "finance_grant",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("granted_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "organization_id", name="uq_finance_grant_user_org"),
    )
    op.create_index("ix_finance_grant_user_id", "finance_grant", ["user_id"], unique=False)
    op.create_index(
        "uq_finance_grant_user_all",
        "finance_grant",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("organization_id IS NULL"),
        postgresql_where=sa.text("organization_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_finance_grant_user_all", table_name="finance_grant")
    op.drop_index("ix_finance_grant_user_id", table_name="finance_grant")
    op.drop_table("finance_grant")
