"""statistics summaries by site: the monthly summaries of requests and of interpreters are
kept per site too (`site_id`, "" for none); what is summed already stays under ""

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 05:15:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = {
    "stats_request_month": ["month", "language", "organization_id"],
    "stats_interpreter_month": ["month", "interpreter_id", "organization_id"],
}


def _rekey(table: str, columns: list[str]) -> None:
    site = sa.Column("site_id", sa.String(length=32), nullable=False, server_default="")
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(table, site)
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, columns)
        return
    # SQLite rebuilds the table with the new key. SQLAlchemy warns that the old key columns
    # were read back as keys; the new key is the one it sets, so the warning says nothing.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_stats_", sa.exc.SAWarning)
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.add_column(site)
            batch_op.create_primary_key(f"{table}_pkey", columns)


def upgrade() -> None:
    for table, columns in _KEYS.items():
        _rekey(table, [*columns, "site_id"])


def downgrade() -> None:
    # Summing the sites of a key back into one row is not done here: keep a backup.
    raise NotImplementedError("statistics summaries by site cannot be merged back")
