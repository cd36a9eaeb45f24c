"""Where the test suite finds PostgreSQL and Redis, and what to do when they are missing.

With TOLK_REQUIRE_BACKENDS=1 (as .ci/run sets) a missing server fails the test instead of
skipping it, so CI can never pass while the PostgreSQL and Redis tests silently skip.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import pytest

POSTGRES_URL = os.environ.get(
    "TOLK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# asyncpg connects by the plain libpq URL, without SQLAlchemy's driver suffix.
POSTGRES_DSN = POSTGRES_URL.replace("+asyncpg", "")
REDIS_URL = os.environ.get("TOLK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("TOLK_REQUIRE_BACKENDS") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def need(url: str, default_port: int, what: str) -> None:
    """Skip (or, in CI, fail) unless the server behind `url` answers."""
    if _reachable(url, default_port):
        return
    if REQUIRED:
        pytest.fail(f"{what} at {url} is not reachable and TOLK_REQUIRE_BACKENDS=1")
    pytest.skip(f"{what} at {url} is not reachable")


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL schema for one test; dropped afterwards."""
    import asyncpg

    need(POSTGRES_URL, 5432, "PostgreSQL")
    name = "t_" + secrets.token_hex(6)
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        yield name
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.close()


async def postgres_execute(statement: str, dsn: str = POSTGRES_DSN) -> None:
    """Run one statement on the test PostgreSQL server (or `dsn`) on a connection of its own."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
