"""A fast path for new rows on a hot path: a table model's instance made from the row as it
will be written, without the model's constructor. The constructor sets every field through
pydantic's and SQLAlchemy's attribute events (~0.14 ms for a request's twenty columns on
this machine, against ~0.01 ms here); a row that is written with a plain INSERT right after
needs neither. The plain path is the constructor, which `TOLK_FAST_PATHS=false` takes;
tests/infra/test_rows_fast.py holds the two to the same instance.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy.orm import configure_mappers, instrumentation
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


@functools.cache
def _columns(model: type[SQLModel]) -> frozenset[str]:
    return frozenset(model.__table__.columns.keys())  # type: ignore[attr-defined]


def new_row(model: type[M], row: dict[str, Any], *, fast: bool) -> M:
    """A transient instance of `model` holding `row` (every column given): built straight
    from the row when `fast`, else by the model's constructor."""
    if not fast:
        return model(**row)
    if row.keys() != _columns(model):
        # A column left out would read as None here, where the constructor gives its default.
        raise ValueError(f"a new {model.__name__} row names every column: {sorted(row)}")
    # Its attributes work only once the mappers are configured, which any ORM query does
    # first; a process whose first use of a model is this one must do it here.
    configure_mappers()
    instance: M = instrumentation.manager_of_class(model).new_instance()
    # What the constructor leaves beside the columns: pydantic's record of the fields set.
    object.__setattr__(instance, "__pydantic_fields_set__", set(row))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    instance.__dict__.update(row)
    return instance
