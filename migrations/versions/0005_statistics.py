"""statistics: presence intervals, monthly summaries, indexes for periods

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 01:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db
from infra.ids import new_id

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_interpreter_month",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("interpreter_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("online_s", sa.Float(), nullable=False),
        sa.Column("talk_s", sa.Float(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("declined", sa.Integer(), nullable=False),
        sa.Column("rang_out", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("month", "interpreter_id", "organization_id"),
    )
    op.create_table(
        "stats_request_month",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
        sa.Column("organization_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("within_30s", sa.Integer(), nullable=False),
        sa.Column("within_2min", sa.Integer(), nullable=False),
        sa.Column("within_5min", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("accept_histogram", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column(
            "connect_histogram", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False
        ),
        sa.Column("demand_by_hour", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column(
            "unanswered_by_hour", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False
        ),
        sa.PrimaryKeyConstraint("month", "language", "organization_id"),
    )
    op.create_table(
        "presence_interval",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("interpreter_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("started_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["interpreter_id"], ["interpreter.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("presence_interval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_presence_interval_ended_at"), ["ended_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_presence_interval_interpreter_id"), ["interpreter_id"], unique=False
        )
        batch_op.create_index("ix_presence_interval_started_at", ["started_at"], unique=False)

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_connected_at", ["connected_at"], unique=False)

    with op.batch_alter_table("interpretation_request", schema=None) as batch_op:
        batch_op.create_index("ix_request_created_at", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_request_organization_created", ["organization_id", "created_at"], unique=False
        )

    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.create_index("ix_offer_created_at", ["created_at"], unique=False)

    # Interpreters online now are online since their last change of status.
    bind = op.get_bind()
    online = bind.execute(
        sa.text("SELECT user_id, status_changed_at FROM interpreter WHERE status <> 'offline'")
    ).all()
    interval = sa.table(
        "presence_interval",
        sa.column("id", sa.String()),
        sa.column("interpreter_id", sa.String()),
        sa.column("started_at", infra.db.UTCDateTime(timezone=True)),
    )
    if online:
        op.bulk_insert(
            interval,
            [
                {"id": new_id(), "interpreter_id": user_id, "started_at": _aware(since)}
                for user_id, since in online
            ],
        )


def _aware(value: datetime | str) -> datetime:
    # SQLite hands back text of naive UTC, PostgreSQL an aware datetime.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def downgrade() -> None:
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.drop_index("ix_offer_created_at")

    with op.batch_alter_table("interpretation_request", schema=None) as batch_op:
        batch_op.drop_index("ix_request_organization_created")
        batch_op.drop_index("ix_request_created_at")

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_connected_at")

    with op.batch_alter_table("presence_interval", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_interval_started_at")
        batch_op.drop_index(batch_op.f("ix_presence_interval_interpreter_id"))
        batch_op.drop_index(batch_op.f("ix_presence_interval_ended_at"))

    op.drop_table("presence_interval")
    op.drop_table("stats_request_month")
    op.drop_table("stats_interpreter_month")
