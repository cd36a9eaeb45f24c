"""one index for interpreters by presence: the one over (status, idle_since) serves every
lookup by status; beside it, an index on status alone let PostgreSQL, with statistics taken
while most interpreters were offline, read every available interpreter and sort them for a
request instead of walking the free ones in idle order and stopping at the first few

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 19:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_interpreter_status", table_name="interpreter")


def downgrade() -> None:
    op.create_index("ix_interpreter_status", "interpreter", ["status"])
