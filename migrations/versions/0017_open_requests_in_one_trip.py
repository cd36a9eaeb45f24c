"""the open-request cap in one round trip on PostgreSQL: a function that locks the
counsellor's row and then counts their open requests (dispatch/caps_fast.py)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 22:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# VOLATILE (the default), so the count takes a snapshot of its own after the lock: it sees
# a request that a concurrent transaction of the same counsellor committed meanwhile.
_FUNCTION = """
CREATE FUNCTION tolk_open_requests(counsellor varchar, states varchar[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM user_account WHERE id = counsellor FOR UPDATE;
    RETURN (
        SELECT count(*) FROM interpretation_request
        WHERE counsellor_id = counsellor AND state = ANY(states)
    );
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION tolk_open_requests(varchar, varchar[])")
