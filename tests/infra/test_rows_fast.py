"""The new-row fast path (infra/rows_fast.py) makes the instance the model's constructor
makes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm.attributes import set_committed_value

from dispatch.models import InterpretationRequest, RequestState
from infra.rows_fast import new_row

ROOT = Path(__file__).resolve().parents[2]


def _row() -> dict[str, Any]:
    now = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    row: dict[str, Any] = dict.fromkeys(InterpretationRequest.__table__.columns.keys())  # type: ignore[attr-defined]
    row.update(
        id="r1",
        counsellor_id="c1",
        organization_id="o1",
        language="ar",
        preferences_required=False,
        audio_only=True,
        state=RequestState.QUEUED,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=10),
        waves=0,
    )
    return row


def _fields(req: InterpretationRequest) -> dict[str, Any]:
    return {k: v for k, v in vars(req).items() if k != "_sa_instance_state"}


def test_a_row_makes_the_instance_the_constructor_makes() -> None:
    """Same attributes, same pydantic view, both transient, and both take a committed
    value as dispatch's guarded moves give one."""
    plain = new_row(InterpretationRequest, _row(), fast=False)
    fast = new_row(InterpretationRequest, _row(), fast=True)
    assert _fields(fast) == _fields(plain)
    assert fast.model_dump() == plain.model_dump()
    assert inspect(fast).transient
    assert inspect(plain).transient
    for req in (plain, fast):
        set_committed_value(req, "state", RequestState.OFFERING)
        assert req.state == RequestState.OFFERING


def test_a_row_without_every_column_is_refused() -> None:
    """A column left out would read as None, where the constructor gives its default."""
    row = _row()
    del row["tier"]
    with pytest.raises(ValueError, match="every column"):
        new_row(InterpretationRequest, row, fast=True)


def test_a_row_becomes_a_usable_instance_in_a_fresh_process() -> None:
    """The server's first use of a model may be a row made on the hot path, before any
    ORM query has configured the mappers."""
    script = (
        "from sqlalchemy import Table\n"
        "from dispatch.models import InterpretationRequest\n"
        "from infra.rows_fast import new_row\n"
        "table: Table = InterpretationRequest.__table__\n"
        "row = dict.fromkeys(table.columns.keys())\n"
        "row.update(id='r1', language='ar')\n"
        "req = new_row(InterpretationRequest, row, fast=True)\n"
        "print(req.id, req.language)\n"
    )
    done = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["r1", "ar"]
