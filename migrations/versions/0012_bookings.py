"""bookings: interpreters booked ahead for appointments at a set local time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("counsellor_id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("gender", sa.String(length=20), nullable=True),
        sa.Column("specialization", sa.String(length=50), nullable=True),
        sa.Column("preferences_required", sa.Boolean(), nullable=False),
        sa.Column("audio_only", sa.Boolean(), nullable=False),
        sa.Column("local_start", sa.String(length=16), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("duration_min", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("interpreter_id", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("escalated_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", infra.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["counsellor_id"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.ForeignKeyConstraint(["interpreter_id"], ["interpreter.user_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_booking_state_starts", "booking", ["state", "starts_at"])
    op.create_index("ix_booking_counsellor_starts", "booking", ["counsellor_id", "starts_at"])
    op.create_index("ix_booking_interpreter_starts", "booking", ["interpreter_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_booking_interpreter_starts", table_name="booking")
    op.drop_index("ix_booking_counsellor_starts", table_name="booking")
    op.drop_index("ix_booking_state_starts", table_name="booking")
    op.drop_table("booking")
