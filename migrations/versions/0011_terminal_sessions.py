"""login_session.device: terminals' device sessions, which have no idle timeout

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("login_session") as batch:
        batch.add_column(
            sa.Column("device", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("login_session") as batch:
        batch.drop_column("device")
