"""consultation rooms: rooms, their participants and presence, invitations, guest
sessions; calls, requests and usage records name their room

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import infra.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consultation_room",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("counsellor_id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=30), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["counsellor_id"], ["user_account.id"]),
        sa.ForeignKeyConstraint(["organization_id"], ["organization.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consultation_room_counsellor_id", "consultation_room", ["counsellor_id"])
    op.create_index("ix_room_state", "consultation_room", ["state"])
    op.create_index(
        "uq_room_open_counsellor",
        "consultation_room",
        ["counsellor_id"],
        unique=True,
        sqlite_where=sa.text("state = 'open'"),
        postgresql_where=sa.text("state = 'open'"),
    )
    op.create_table(
        "room_participant",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("added_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("joined_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("seen_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("left_at", infra.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["consultation_room.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_room_participant_room", "room_participant", ["room_id", "participant_id"])
    op.create_table(
        "room_presence",
        sa.Column("socket_id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", infra.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["consultation_room.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("socket_id"),
    )
    op.create_index("ix_room_presence_room_id", "room_presence", ["room_id"])
    op.create_table(
        "room_invitation",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", infra.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", infra.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["room_id"], ["consultation_room.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_room_invitation_room_id", "room_invitation", ["room_id"])
    op.create_table(
        "guest_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("guest_id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("created_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", infra.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", infra.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
        sa.UniqueConstraint("guest_id"),
    )
    op.create_index("ix_guest_session_room_id", "guest_session", ["room_id"])
    for table in ("call", "interpretation_request", "usage_record"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("room_id", sa.String(length=32), nullable=True))
            batch_op.create_index(f"ix_{table}_room_id", ["room_id"])


def downgrade() -> None:
    for table in ("usage_record", "interpretation_request", "call"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_room_id")
            batch_op.drop_column("room_id")
    op.drop_table("guest_session")
    op.drop_table("room_invitation")
    op.drop_table("room_presence")
    op.drop_table("room_participant")
    op.drop_table("consultation_room")
