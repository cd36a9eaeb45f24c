"""How many requests one counsellor may have open at once, checked in the transaction that
opens the next one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, func
from sqlmodel import col, select

from accounts.models import User
from dispatch import caps_fast, service
from dispatch.models import InterpretationRequest, RequestState
from infra.config import Settings
from infra.errors import Conflict

_OPEN = (RequestState.QUEUED, RequestState.OFFERING)

# Built once, with the counsellor as a bound value: building and keying a statement costs
# more than SQLite takes to run it, on the hot path of every new request.
_LOCK_COUNSELLOR = (
    select(col(User.id)).where(col(User.id) == bindparam("counsellor_id")).with_for_update()
)
_COUNT_OPEN = (
    select(func.count())
    .select_from(InterpretationRequest)
    .where(col(InterpretationRequest.counsellor_id) == bindparam("counsellor_id"))
    .where(col(InterpretationRequest.state).in_([s.value for s in _OPEN]))
)


class TooManyOpenRequests(Conflict):
    code = "too_many_open_requests"
    default_message = "You have as many open requests as allowed; cancel one or wait for one."


def check_open_requests(conn: Connection, counsellor_id: str, limit: int, *, fast: bool) -> None:
    """Refuse (409) a counsellor who has `limit` requests queued or being offered already
    (`fast`: on PostgreSQL, in one round trip, dispatch/caps_fast.py)."""
    if conn.dialect.name == "postgresql" and fast:
        open_now = caps_fast.locked_open_requests(conn, counsellor_id, [s.value for s in _OPEN])
    else:
        open_now = _count_open(conn, counsellor_id)
    if open_now >= limit:
        raise TooManyOpenRequests(
            f"You have {open_now} open requests (at most {limit}); cancel one or wait for one.",
            limit=limit,
        )


def _count_open(conn: Connection, counsellor_id: str) -> int:
    if conn.dialect.name == "postgresql":
        # Two requests of one counsellor at the same moment would both count the same
        # number; the lock on the counsellor's row makes the second count after the first
        # has written. (SQLite runs one write transaction at a time anyway.)
        conn.execute(_LOCK_COUNSELLOR, {"counsellor_id": counsellor_id})
    return int(conn.execute(_COUNT_OPEN, {"counsellor_id": counsellor_id}).scalar_one())


def open_within_cap(
    conn: Connection,
    ask: service.Ask,
    /,
    *,
    limit: int | None,
    now: datetime,
    settings: Settings,
    first: str | None = None,
) -> service.Opened:
    """In the caller's transaction: count the counsellor's open requests (not when `limit`
    is None), then open the next (`first`: offered first, see `service.open_request`)."""
    if limit is not None:
        check_open_requests(conn, ask.counsellor_id, limit, fast=settings.fast_paths)
    return service.open_request(conn, ask, now, settings, first)
