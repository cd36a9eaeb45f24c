"""Index shapes shared by the packages' tables."""

from __future__ import annotations

from sqlalchemy import Index, text


def partial_index(name: str, column: str, where: str, unique: bool = True) -> Index:
    """An index over the rows matching `where`, the same on SQLite and PostgreSQL."""
    return Index(
        name,
        column,
        unique=unique,
        sqlite_where=text(where),
        postgresql_where=text(where),
    )
