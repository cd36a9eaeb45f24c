"""requests, calls, consultation rooms and usage records carry their counsellor's site
(usage records its name too); existing rows get the counsellor's site of now

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("interpretation_request", "call", "consultation_room", "usage_record")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("site_id", sa.String(length=32), nullable=True))
        op.create_index(f"ix_{table}_site_id", table, ["site_id"])
    op.add_column(
        "usage_record",
        sa.Column("site", sa.String(length=200), nullable=False, server_default=""),
    )
    # Before this revision every counsellor was on their organisation's one site (0009).
    for table in _TABLES:
        op.execute(
            f"UPDATE {table} SET site_id = (SELECT u.site_id FROM user_account u"  # noqa: S608
            f" WHERE u.id = {table}.counsellor_id)"
        )
    op.execute(
        "UPDATE usage_record SET site = COALESCE((SELECT s.name FROM site s"
        " WHERE s.id = usage_record.site_id), '')"
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_record") as batch_op:
        batch_op.drop_column("site")
    for table in reversed(_TABLES):
        op.drop_index(f"ix_{table}_site_id", table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("site_id")
