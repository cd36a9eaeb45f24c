"""bookings name the site of their appointment; earlier ones get their counsellor's site

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("booking", sa.Column("site_id", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE booking SET site_id = (SELECT u.site_id FROM user_account u"
        " WHERE u.id = booking.counsellor_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("booking") as batch_op:
        batch_op.drop_column("site_id")
