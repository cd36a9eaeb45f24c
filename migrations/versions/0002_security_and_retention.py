"""security event log, token expiry and scopes, machine accounts; usage records outlive calls

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 22:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's foreign keys of 0001 have no names; batch mode names them by this convention.
_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _usage_call_fk() -> str:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return "fk_usage_record_call_id_call"
    for fk in sa.inspect(bind).get_foreign_keys("usage_record"):
        if fk["referred_table"] == "call":
            return str(fk["name"])
    return "usage_record_call_id_fkey"


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("actor_role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("via", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("target_type", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("target_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("details", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_target_id"), ["target_id"], unique=False)

    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("machine", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(
            sa.Column("expires_at", infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "scopes",
                sqlmodel.sql.sqltypes.AutoString(length=500),
                nullable=False,
                server_default="*",
            )
        )
    # Tokens issued before expiry existed get the default lifetime from today.
    api_token = sa.table("api_token", sa.column("expires_at", infra.db.UTCDateTime(timezone=True)))
    op.execute(
        api_token.update()
        .where(api_token.c.expires_at.is_(None))
        .values(expires_at=datetime.now(UTC) + timedelta(days=90))
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=infra.db.UTCDateTime(timezone=True), nullable=False
        )

    # Usage records are kept for years; the calls they bill are deleted after days.
    with op.batch_alter_table("usage_record", schema=None, naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint(_usage_call_fk(), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("usage_record", schema=None, naming_convention=_NAMES) as batch_op:
        batch_op.create_foreign_key("fk_usage_record_call_id_call", "call", ["call_id"], ["id"])
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("scopes")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("created_by")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("machine")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_target_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
    op.drop_table("audit_event")
