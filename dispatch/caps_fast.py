"""A fast path for the open-request cap on PostgreSQL: the counsellor's row locked and
their open requests counted in one round trip instead of two, by the function
`tolk_open_requests` (migration 0017).

The count must read after the lock: a request the counsellor opened at the same moment is
committed by then. A VOLATILE PL/pgSQL function takes a fresh snapshot for each statement
in it, so its count does; one plain statement would count with the snapshot it began with.
The plain path beside it, the lock then the count, is what `TOLK_FAST_PATHS=false` takes;
tests/dispatch/test_caps_fast.py holds the two to the same counts and the same waiting.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ARRAY, Connection, String, bindparam, text

_CALL = text("SELECT tolk_open_requests(:counsellor_id, :states)").bindparams(
    bindparam("states", type_=ARRAY(String))
)


def locked_open_requests(conn: Connection, counsellor_id: str, states: Sequence[str]) -> int:
    """Lock the counsellor's row, then count their requests in `states`."""
    found = conn.execute(_CALL, {"counsellor_id": counsellor_id, "states": list(states)})
    return int(found.scalar_one())
