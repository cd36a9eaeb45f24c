"""interpreter pools with a tier (in-house staff first, then external): every existing
interpreter joins the external pool; requests remember the tier they reached; tariffs
and usage records for calls interpreted by in-house staff

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pool = op.create_table(
        "interpreter_pool",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("escalation_s", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.bulk_insert(
        pool,
        [
            {"id": pool_id, "name": name, "tier": pool_id, "escalation_s": 20}
            for pool_id, name in (
                ("in_house", "Kolleg*innen im Haus"),
                ("external", "Externe Dolmetscher*innen"),
            )
        ],
    )
    with op.batch_alter_table("interpreter", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pool_id", sa.String(length=32), nullable=False, server_default="external")
        )
        batch_op.create_index("ix_interpreter_pool_id", ["pool_id"])
        batch_op.create_foreign_key(
            "fk_interpreter_pool_id", "interpreter_pool", ["pool_id"], ["id"]
        )
    with op.batch_alter_table("interpretation_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=20), nullable=True))
    for table in ("tariff", "usage_record"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("in_house", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("usage_record", "tariff"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("in_house")
    with op.batch_alter_table("interpretation_request", schema=None) as batch_op:
        batch_op.drop_column("tier")
    with op.batch_alter_table("interpreter", schema=None) as batch_op:
        batch_op.drop_constraint("fk_interpreter_pool_id", type_="foreignkey")
        batch_op.drop_index("ix_interpreter_pool_id")
        batch_op.drop_column("pool_id")
    op.drop_table("interpreter_pool")
