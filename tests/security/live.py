"""The real app served from a thread of its own, for synchronous tests (hypothesis and
schemathesis drive their examples from plain functions): a URL, and a way to run a
coroutine on the server's loop (to make users and tokens)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from accounts import service
from accounts.models import Role
from infra.appkeys import CLOCK, DATABASE
from infra.config import Settings
from tests import backends
from tests.factories import _HASH
from tolk.app import create_app

T = TypeVar("T")


class LiveApp:
    """One app on 127.0.0.1, its loop in a daemon thread."""

    def __init__(self, settings: Settings, search_path: str | None = None) -> None:
        self.app = create_app(settings, search_path=search_path)
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app, access_log=None)
        self.url = ""
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self.run(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.run(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.run(self.runner.cleanup(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def token(self, role: Role) -> str:
        """A new user of `role` (in an organisation of its own) and a bearer token for it."""

        async def make() -> str:
            db = self.app[DATABASE]
            now = self.app[CLOCK].now()
            name = f"{role.value}-{secrets.token_hex(4)}"
            async with db.write() as session:
                org = await service.create_organization(session, name, "", now)
                user = await service.create_user(
                    session,
                    username=name,
                    password_hash=_HASH,
                    display_name=name,
                    role=role,
                    organization_id=org.id,
                    now=now,
                )
                return (await service.issue_api_token(session, user.id, "fuzz", now)).token

        return self.run(make())


@contextmanager
def live_app(backend: str, tmp: Path, **changes: Any) -> Iterator[LiveApp]:
    """The app on a fresh SQLite file, or on a fresh PostgreSQL schema with the Redis bus,
    with `changes` to its settings."""
    with _database(backend, tmp) as (url, search_path):
        settings = Settings(
            _env_file=None,
            database_url=url,
            redis_url=backends.REDIS_URL if search_path else None,
            redis_namespace="fuzz-" + secrets.token_hex(4),
            secret_key="fuzz-" + secrets.token_hex(8),
            **changes,
        )
        live = LiveApp(settings, search_path)
        live.start()
        try:
            yield live
        finally:
            live.stop()


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[tuple[str, str | None]]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp}/tolk.db", None
        return

    from tolk import schema

    backends.need(backends.POSTGRES_URL, 5432, "PostgreSQL")
    backends.need(backends.REDIS_URL, 6379, "Redis")
    name = "t_" + secrets.token_hex(6)
    asyncio.run(backends.postgres_execute(f"CREATE SCHEMA {name}"))
    try:
        asyncio.run(schema.upgrade(backends.POSTGRES_URL, name))
        yield backends.POSTGRES_URL, name
    finally:
        asyncio.run(backends.postgres_execute(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
