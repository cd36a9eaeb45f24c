"""interpreter numbers, and whether counsellors see an interpreter's name or number

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    setting = op.create_table(
        "roster_setting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interpreter_shown_as", sa.String(length=20), nullable=False),
        sa.Column("last_interpreter_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("interpreter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_interpreter_number"), ["number"], unique=True)
    # Profiles made before numbers existed are numbered in the order their users were made.
    bind = op.get_bind()
    ids = bind.execute(
        sa.text(
            "SELECT i.user_id FROM interpreter i JOIN user_account u ON u.id = i.user_id"
            " ORDER BY u.created_at, u.username"
        )
    ).scalars()
    count = 0
    for count, user_id in enumerate(list(ids), start=1):
        bind.execute(
            sa.text("UPDATE interpreter SET number = :n WHERE user_id = :id"),
            {"n": count, "id": user_id},
        )
    op.bulk_insert(
        setting, [{"id": 1, "interpreter_shown_as": "name", "last_interpreter_number": count}]
    )


def downgrade() -> None:
    with op.batch_alter_table("interpreter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interpreter_number"))
        batch_op.drop_column("number")
    op.drop_table("roster_setting")
