"""statistics: sealed months read from their summaries; waits kept in whole seconds;
calls by their creation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 01:30:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import infra.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The month summaries' lists outgrew their bounded columns; these become unbounded text.
_BOUNDED_TEXT = (
    ("accept_histogram", 400),
    ("connect_histogram", 400),
    ("demand_by_hour", 2000),
    ("unanswered_by_hour", 2000),
)


def upgrade() -> None:
    op.create_table(
        "stats_sealed_month",
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("sealed_at", infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("stats_request_month", schema=None) as batch_op:
        for column, length in _BOUNDED_TEXT:
            batch_op.alter_column(
                column,
                existing_type=sa.VARCHAR(length=length),
                type_=sa.Text(),
                existing_nullable=False,
            )
    # Waits were counted in buckets (lists); each bucket becomes its upper edge in seconds.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT month, language, organization_id, accept_histogram, connect_histogram"
            " FROM stats_request_month"
        )
    ).all()
    for month, language, organization_id, *lists in rows:
        bind.execute(
            sa.text(
                "UPDATE stats_request_month SET accept_histogram = :a, connect_histogram = :c"
                " WHERE month = :m AND language = :l AND organization_id = :o"
            ),
            {
                "a": _seconds(lists[0]),
                "c": _seconds(lists[1]),
                "m": month,
                "l": language,
                "o": organization_id,
            },
        )


_EDGES = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 600, 900, 1800, 3600)


def _seconds(buckets: str) -> str:
    counts = json.loads(buckets or "[]")
    if isinstance(counts, dict):
        return buckets
    return json.dumps({str(_EDGES[i]): n for i, n in enumerate(counts) if n})


def downgrade() -> None:
    with op.batch_alter_table("stats_request_month", schema=None) as batch_op:
        for column, length in reversed(_BOUNDED_TEXT):
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=sa.VARCHAR(length=length),
                existing_nullable=False,
            )

    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_created_at")
    op.drop_table("stats_sealed_month")
