"""Fixtures: the real app from the real factory, on SQLite and on PostgreSQL with Redis."""

from __future__ import annotations

import gc
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from infra.clock import ManualClock
from infra.config import Settings
from infra.db import Database
from tests import at_head, backends
from tests.factories import Factory
from tolk.app import create_app
from tolk.logging import configure_logging

configure_logging("console", "warning")


@dataclass
class Stack:
    """Which database and bus a test runs on."""

    name: str
    database_url: str
    redis_url: str | None
    search_path: str | None


COLLECT_EVERY = 50
"""Tests between two full garbage collections of the test process, made between tests."""
_finished = 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After a test's teardown, now and then: collect the process's garbage, then freeze
    what lives on.

    The test process holds millions of objects after a few hundred tests, and a full
    collection of them took 1-3 s: one that fell inside a test stalled its loop past the
    Redis bus's 2 s without a pong, and the test saw a bus outage no server had. Frozen
    objects are left out of the collections the interpreter starts by itself, so those stay
    short; the ones made here, every `COLLECT_EVERY` tests, still free the earlier tests'
    garbage.
    """
    yield  # the test's fixtures are finalised first: its app and bus are closed
    global _finished
    _finished += 1
    if _finished % COLLECT_EVERY == 1:
        gc.unfreeze()
        gc.collect()
        gc.freeze()


@pytest.fixture(scope="session")
def kept_schemas() -> Iterator[None]:
    """The PostgreSQL schemas at head kept between tests are dropped at the end of the run."""
    yield
    at_head.drop_kept()


@pytest.fixture(params=["sqlite", "postgres"])
async def stack(
    request: pytest.FixtureRequest, tmp_path: Path, kept_schemas: None
) -> AsyncIterator[Stack]:
    """SQLite with the in-process bus, then PostgreSQL with the Redis bus. A test that runs
    the app gets a PostgreSQL schema at head (SQLite: `client` copies the migrated file);
    any other an empty schema."""
    if request.param == "sqlite":
        yield Stack("sqlite", f"sqlite+aiosqlite:///{tmp_path}/tolk.db", None, None)
        return
    backends.need(backends.REDIS_URL, 6379, "Redis")
    runs_app = "client" in request.fixturenames
    async with (at_head.postgres_at_head if runs_app else backends.postgres_schema)() as schema:
        yield Stack("postgres", backends.POSTGRES_URL, backends.REDIS_URL, schema)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def settings_for(stack: Stack, **overrides: Any) -> Settings:
    """The settings tests run with on a backend, with `overrides`."""
    return Settings(
        _env_file=None,
        database_url=stack.database_url,
        redis_url=stack.redis_url,
        redis_namespace="test-" + secrets.token_hex(4),
        secret_key="test-secret-" + secrets.token_hex(8),
        presence_grace_s=30,
        **overrides,
    )


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return settings_for(stack)


@pytest.fixture
async def client(
    stack: Stack,
    settings: Settings,
    clock: ManualClock,
    aiohttp_client: object,
    tmp_path_factory: pytest.TempPathFactory,
) -> TestClient:
    # `stack` comes first so that it is torn down last: the app (and its background
    # jobs) must be closed before its PostgreSQL schema is emptied for the next test.
    if stack.name == "sqlite":
        await at_head.sqlite_at_head(settings.database_url, tmp_path_factory.getbasetemp())
    app = create_app(settings, clock=clock, search_path=stack.search_path)
    return await aiohttp_client(app)  # type: ignore[operator]


@pytest.fixture
def db(client: TestClient) -> Database:
    from infra.appkeys import DATABASE

    return client.app[DATABASE]


@pytest.fixture
def factory(client: TestClient, db: Database, clock: ManualClock) -> Factory:
    return Factory(client, db, clock)
