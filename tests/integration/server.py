"""A real `tolk serve` as a child process for integration tests, on a fresh SQLite file or a
fresh PostgreSQL database (with Redis), seeded with the demo roster."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests import backends
from tests.processes import free_port

TOLK = [sys.executable, "-m", "tolk"]


@dataclass(frozen=True)
class Backend:
    """Where a server process keeps its data."""

    name: str
    database_url: str
    redis_url: str | None = None


@contextlib.asynccontextmanager
async def backend(name: str, tmp: Path) -> AsyncIterator[Backend]:
    """A fresh SQLite file, or a fresh PostgreSQL database (dropped after) plus Redis.

    A server process cannot be given a schema (search_path is an in-process option of the
    app factory), so PostgreSQL gets a database of its own.
    """
    if name == "sqlite":
        yield Backend(name, f"sqlite+aiosqlite:///{tmp}/tolk.db")
        return
    import asyncpg

    backends.need(backends.POSTGRES_URL, 5432, "PostgreSQL")
    backends.need(backends.REDIS_URL, 6379, "Redis")
    database = "tolk_it_" + secrets.token_hex(6)
    conn = await asyncpg.connect(backends.POSTGRES_DSN)
    try:
        await conn.execute(f"CREATE DATABASE {database}")
        base = backends.POSTGRES_URL.rsplit("/", 1)[0]
        yield Backend(name, f"{base}/{database}", backends.REDIS_URL)
    finally:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.close()


class TolkServer:
    """`tolk serve` (or `tolk demo`) as a child process; can be killed and started again on
    the same port and database."""

    def __init__(self, tmp: Path, data: Backend, command: str = "serve", **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{command}.log"
        self.command = command
        self.env = {
            **os.environ,
            "TOLK_DATABASE_URL": data.database_url,
            "TOLK_REDIS_URL": data.redis_url or "",
            "TOLK_REDIS_NAMESPACE": "it-" + secrets.token_hex(4),
            "TOLK_HOST": "127.0.0.1",
            "TOLK_PORT": str(self.port),
            "TOLK_SECRET_KEY": "integration-test-" + secrets.token_hex(8),
            "TOLK_LOG_FORMAT": "json",
            "TOLK_LOG_LEVEL": "info",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def run(self, *args: str, timeout_s: float = 60) -> None:
        """Run a one-off `tolk` command (migrate, seed-demo) against the same database."""
        proc = await asyncio.create_subprocess_exec(
            *TOLK,
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        assert proc.returncode == 0, out.decode(errors="replace")[-2000:]

    async def prepare(self) -> None:
        """The newest schema and the demo roster."""
        await self.run("migrate")
        await self.run("seed-demo")

    async def start(self, timeout_s: float = 30) -> None:
        """Start the process and wait until /healthz answers."""
        with self.log.open("ab") as log:
            # Our own command with fixed arguments; Popen returns at once.
            self.proc = subprocess.Popen(  # noqa: ASYNC220, S603
                [*TOLK, self.command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # `tolk demo`'s children go with it
            )
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                assert self.proc.poll() is None, self.tail()
                assert time.monotonic() < deadline, "tolk did not come up\n" + self.tail()
                await asyncio.sleep(0.05)

    def tail(self, chars: int = 4000) -> str:
        """The end of the server's log (for assertion messages)."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, sockets drop, the database keeps what was written."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def serving(name: str, tmp: Path, **env: str) -> AsyncIterator[TolkServer]:
    """`tolk serve` on a fresh `name` backend with the newest schema and the demo roster,
    stopped on the way out."""
    async with backend(name, tmp) as data:
        server = TolkServer(tmp, data, **env)
        try:
            await server.prepare()
            await server.start()
            yield server
        finally:
            server.stop()
