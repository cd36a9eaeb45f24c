"""Counters kept in a column and raised in the database, never read, added to and written."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import InstrumentedAttribute, Mapped
from sqlmodel.ext.asyncio.session import AsyncSession


async def add_one(
    session: AsyncSession, counter: Mapped[int], where: ColumnElement[bool]
) -> int | None:
    """Raise `counter` by one in the row `where` picks and return its new value (None: no
    such row)."""
    column = cast(InstrumentedAttribute[int], counter)  # what `col()` returns at run time
    # One UPDATE ... RETURNING: two transactions raising the same row at once queue on its
    # lock and see different values, where a read then a write would both see the same.
    result = await session.exec(
        update(column.class_)
        .where(where)
        .values({column.key: column + 1})
        .returning(column)
        .execution_options(synchronize_session=False)
    )
    value = result.scalar_one_or_none()
    return None if value is None else int(value)
