"""Schema migrations on SQLite and PostgreSQL, and the start-up rules around them."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from infra.db import make_engine
from tests import backends
from tolk import schema
from tolk.app import _ensure_schema
from tolk.settings import StartupError, load_settings


class TestMigrations:
    async def test_upgrade_to_head_creates_every_table(self, stack, settings):
        """`tolk migrate` brings an empty database to the newest revision with every table."""
        await schema.upgrade(settings.database_url, stack.search_path)
        assert (
            await schema.current_revision(settings.database_url, stack.search_path)
            == schema.head_revision()
        )
        engine = make_engine(settings.database_url, search_path=stack.search_path)
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        await engine.dispose()
        assert {
            "user_account",
            "organization",
            "login_session",
            "api_token",
            "interpreter",
            "interpretation_request",
            "offer",
            "call",
            "usage_record",
            "tariff",
        } <= tables

    async def test_sqlite_is_upgraded_at_start(self, tmp_path):
        """Starting against an empty SQLite file upgrades it by itself."""
        settings = load_settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/new.db", secret_key="x"
        )
        await _ensure_schema(settings, None)
        assert await schema.current_revision(settings.database_url) == schema.head_revision()

    async def test_postgres_behind_head_refuses_to_start(self):
        """Against a PostgreSQL database that is behind, start-up stops and names the command."""
        async with backends.postgres_schema() as name:
            settings = load_settings(database_url=backends.POSTGRES_URL, secret_key="x")
            with pytest.raises(StartupError, match="run `tolk migrate`"):
                await _ensure_schema(settings, name)
            await schema.upgrade(settings.database_url, name)
            await _ensure_schema(settings, name)
