"""Schema upgrades through Alembic, run on Tolk's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from infra.db import make_engine

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config() -> Config:
    """An Alembic config pointing at Tolk's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest schema revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, search_path: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at `url` to the newest schema (or to `revision`)."""
    config = alembic_config()

    def _upgrade(conn: Connection) -> None:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    engine = make_engine(url, search_path=search_path)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade)
            await conn.commit()
    finally:
        await engine.dispose()


async def current_revision(url: str, search_path: str | None = None) -> str | None:
    """The schema revision the database is at (None when it has none)."""

    def _current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    engine = make_engine(url, search_path=search_path)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()
