"""A fast path for a new request's first wave on PostgreSQL: the request and its offers
written by one statement (the request's INSERT in a WITH clause), one round trip instead
of two on the counsellor's way to the first offer.

PostgreSQL checks the offers' foreign key to the request at the end of the statement, when
the request is there. The plain path beside it, INSERT request then INSERT offers, is what
SQLite and `TOLK_FAST_PATHS=false` take; tests/dispatch/test_wave_fast.py holds the two to
the same rows.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ARRAY, Connection, String, TextClause, bindparam, text

from dispatch.models import InterpretationRequest, Offer


@functools.cache
def _statement() -> TextClause:
    """Built once, with every value bound: the offers' ids and interpreters as two arrays,
    so that waves of any size share the statement (and asyncpg's prepared one)."""
    request = InterpretationRequest.__table__  # type: ignore[attr-defined]
    offer = Offer.__table__  # type: ignore[attr-defined]
    names = [c.name for c in request.columns]
    # Only the tables' own names go into the text; every value is bound.
    sql = (
        f"WITH new_request AS (INSERT INTO {request.name} ({', '.join(names)}) "  # noqa: S608
        f"VALUES ({', '.join(':r_' + n for n in names)}) RETURNING id) "
        f"INSERT INTO {offer.name} (id, request_id, interpreter_id, state, created_at, "
        "expires_at) SELECT o.id, new_request.id, o.interpreter_id, :o_state, :o_created_at, "
        ":o_expires_at FROM new_request, unnest(:o_ids, :o_interpreter_ids) "
        "AS o(id, interpreter_id) ON CONFLICT DO NOTHING RETURNING offer.id"
    )
    ids = ARRAY(String(32))
    return text(sql).bindparams(
        *(bindparam("r_" + c.name, type_=c.type) for c in request.columns),
        bindparam("o_state", type_=offer.c.state.type),
        bindparam("o_created_at", type_=offer.c.created_at.type),
        bindparam("o_expires_at", type_=offer.c.expires_at.type),
        bindparam("o_ids", type_=ids),
        bindparam("o_interpreter_ids", type_=ids),
    )


def insert_with_offers(
    conn: Connection, req: InterpretationRequest, offers: list[dict[str, Any]]
) -> set[str]:
    """INSERT a new request and its pending `offers` (rows of one state, creation and
    expiry, as the plain path writes them) in one statement; the ids of the offers made (an
    interpreter whose pending offer came first is skipped, ON CONFLICT DO NOTHING)."""
    columns = InterpretationRequest.__table__.columns  # type: ignore[attr-defined]
    first = offers[0]
    params: dict[str, Any] = {"r_" + c.name: getattr(req, c.key) for c in columns}
    params |= {
        "o_state": first["state"],
        "o_created_at": first["created_at"],
        "o_expires_at": first["expires_at"],
        "o_ids": [o["id"] for o in offers],
        "o_interpreter_ids": [o["interpreter_id"] for o in offers],
    }
    return {offer_id for (offer_id,) in conn.execute(_statement(), params)}
