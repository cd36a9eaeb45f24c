"""Schema migrations on SQLite and PostgreSQL, and the start-up rules around them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import inspect

from infra.db import UTCDateTime, make_engine
from tests import backends
from tolk import schema
from tolk.app import _ensure_schema
from tolk.settings import StartupError, load_settings


def _stamp() -> sa.ColumnClause[datetime]:
    return sa.column("created_at", UTCDateTime())


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

    async def test_every_organisation_gets_a_site_with_its_counsellors(self, stack, settings):
        """Upgrading a database with organisations gives each one site named after it in
        Europe/Berlin, with its counsellors on it and everyone else on none; a month's
        summary of before keeps its counts, under no site."""
        url, path = settings.database_url, stack.search_path
        await schema.upgrade(url, path, "0008")
        org = sa.table("organization", *map(sa.column, ("id", "name", "cost_center")), _stamp())
        names = ("id", "username", "password_hash", "display_name", "role", "organization_id")
        user = sa.table("user_account", *map(sa.column, (*names, "active", "machine")), _stamp())
        now = datetime(2026, 1, 5, tzinfo=UTC)
        engine = make_engine(url, search_path=path)
        async with engine.begin() as conn:
            for key, name in (("o1", "MigraDo"), ("o2", "Jobcenter")):
                await conn.execute(
                    org.insert().values(id=key, name=name, cost_center="", created_at=now)
                )
            for key, role, org_id in (
                ("c1", "counsellor", "o1"),
                ("c2", "counsellor", "o2"),
                ("i1", "interpreter", "o1"),
                ("a1", "admin", "o1"),
            ):
                await conn.execute(
                    user.insert().values(
                        id=key,
                        username=key,
                        password_hash="!",
                        display_name=key,
                        role=role,
                        organization_id=org_id,
                        active=True,
                        machine=False,
                        created_at=now,
                    )
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO stats_request_month (month, language, organization_id, requests,"
                    " answered, within_30s, within_2min, within_5min, expired, cancelled, failed,"
                    " accept_histogram, connect_histogram, demand_by_hour, unanswered_by_hour)"
                    " VALUES ('2025-12', 'uk', 'o1', 7, 5, 3, 4, 5, 1, 1, 0,"
                    " '{}', '{}', '[]', '[]')"
                )
            )
        await schema.upgrade(url, path)
        async with engine.connect() as conn:
            summed = (
                await conn.execute(sa.text("SELECT site_id, requests FROM stats_request_month"))
            ).all()
            sites = {
                row.organization_id: row
                for row in await conn.execute(sa.text("SELECT * FROM site"))
            }
            rows = await conn.execute(sa.text("SELECT id, site_id FROM user_account"))
            users = {row.id: row.site_id for row in rows}
        await engine.dispose()
        assert {k: (s.name, s.time_zone, bool(s.active)) for k, s in sites.items()} == {
            "o1": ("MigraDo", "Europe/Berlin", True),
            "o2": ("Jobcenter", "Europe/Berlin", True),
        }
        assert users == {"c1": sites["o1"].id, "c2": sites["o2"].id, "i1": None, "a1": None}
        assert [tuple(row) for row in summed] == [("", 7)]

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
