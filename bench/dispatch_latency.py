"""Dispatch latency: from POST /api/requests to the offer arriving on an interpreter's socket.

Runs `tolk serve` as a separate process (SQLite, or PostgreSQL with Redis), fills its
database with N interpreters online across 15 languages, opens a socket for every one of
them, and sends requests at a steady rate. Each request is cancelled as soon as its first
offer has arrived, so the roster stays free and every request measures the same path.

    python -m bench.dispatch_latency [--stacks sqlite,postgres] [--sizes 100,1000,10000]
                                     [--runs 3] [--requests 300] [--rate 20]

Prints a Markdown table (p50 and p99 per run, their medians, and p50 relative to the
smallest roster) and, with --write, adds it to bench/results/dispatch_latency.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, text

from accounts.models import ApiToken, Organization, Role, User
from accounts.passwords import hash_password_sync
from accounts.service import token_digest
from bench.procstat import cpu_seconds
from bench.wsclient import WsClient, open_client
from infra.db import Database, make_engine
from infra.ids import new_id
from interpreters.models import Interpreter, InterpreterLanguage, Presence
from tolk import schema

LANGUAGES = [
    "ar", "fa-AF", "uk", "ru", "tr", "ti", "so", "ps", "ckb", "kmr", "ro", "bg", "pl", "sq", "ku",
]  # fmt: skip
COUNSELLORS = 40
POSTGRES_URL = os.environ.get(
    "TOLK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tolk_bench"
)
REDIS_URL = os.environ.get("TOLK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RESULTS = Path(__file__).resolve().parent / "results" / "dispatch_latency.md"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Roster:
    """Tokens of the seeded users."""

    counsellors: list[str] = field(default_factory=list)
    interpreters: list[str] = field(default_factory=list)


async def fresh_postgres(url: str = POSTGRES_URL) -> None:
    """Drop and create the benchmark's database (the last part of `url`)."""
    import asyncpg

    dsn = url.replace("+asyncpg", "")
    name = dsn.rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def seed(
    url: str,
    size: int,
    rng: random.Random,
    counsellors: int = COUNSELLORS,
    status: Presence = Presence.AVAILABLE,
) -> Roster:
    """N interpreters (1-2 languages each) in `status`, counsellors, and a token for each."""
    await schema.upgrade(url)
    db = Database(make_engine(url))
    now = datetime.now(UTC)
    roster = Roster()
    password = hash_password_sync(secrets.token_urlsafe(12))
    org_id = new_id()
    users: list[dict[str, Any]] = []
    tokens: list[dict[str, Any]] = []
    interpreters: list[dict[str, Any]] = []
    languages: list[dict[str, Any]] = []

    def person(role: Role, n: int) -> str:
        user_id = new_id()
        token = secrets.token_urlsafe(24)
        users.append(
            {
                "id": user_id,
                "username": f"{role.value}{n}",
                "password_hash": password,
                "display_name": f"{role.value.title()} {n}",
                "role": role.value,
                "organization_id": org_id,
                "active": True,
                "created_at": now,
            }
        )
        tokens.append(
            {
                "id": new_id(),
                "user_id": user_id,
                "name": "bench",
                "token_hash": token_digest(token),
                "created_at": now,
                "expires_at": now + timedelta(days=2),
            }
        )
        (roster.counsellors if role == Role.COUNSELLOR else roster.interpreters).append(token)
        return user_id

    for n in range(counsellors):
        person(Role.COUNSELLOR, n)
    for n in range(size):
        user_id = person(Role.INTERPRETER, n)
        interpreters.append(
            {
                "user_id": user_id,
                "active": True,
                "status": status.value,
                "status_changed_at": now,
                "idle_since": now - timedelta(seconds=rng.uniform(0, 3600)),
                "missed_offers": 0,
            }
        )
        for tag in rng.sample(LANGUAGES, rng.choice((1, 1, 2))):
            languages.append({"interpreter_id": user_id, "tag": tag})
    async with db.write() as session:
        await session.exec(
            insert(Organization).values(id=org_id, name="Bench", cost_center="B", created_at=now)
        )
        for table, rows in (
            (User, users),
            (ApiToken, tokens),
            (Interpreter, interpreters),
            (InterpreterLanguage, languages),
        ):
            for start in range(0, len(rows), 2000):
                await session.exec(insert(table), params=rows[start : start + 2000])
    if db.dialect == "postgresql":
        # Planner statistics, as autovacuum gathers them soon after any bulk import.
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
    await db.close()
    return roster


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(url: str, redis_url: str | None, port: int) -> asyncio.subprocess.Process:
    """`tolk serve` in its own process; returns once /healthz answers."""
    env = {
        **os.environ,
        "TOLK_DATABASE_URL": url,
        "TOLK_PORT": str(port),
        "TOLK_LOG_LEVEL": "warning",
        "TOLK_LOG_FORMAT": "json",
        "TOLK_SECRET_KEY": secrets.token_hex(16),
        "TOLK_WS_SEND_QUEUE": "1024",
        # The load goes round a few counsellors faster than a person would ask.
        "TOLK_OPEN_REQUESTS_PER_COUNSELLOR": "1000",
        # The interpreters are seeded available before their sockets open: a grace period
        # longer than the connection storm keeps the sweeper from setting offline those
        # whose socket has not opened yet (at 10,000 the storm outlasts the default grace).
        "TOLK_PRESENCE_GRACE_S": "3600",
    }
    env.pop("TOLK_REDIS_URL", None)
    if redis_url:
        env["TOLK_REDIS_URL"] = redis_url
        env["TOLK_REDIS_NAMESPACE"] = "bench-" + secrets.token_hex(3)
    tolk = Path(sys.executable).parent / "tolk"
    proc = await asyncio.create_subprocess_exec(
        str(tolk), "serve", env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc
            if proc.returncode is not None:
                raise RuntimeError("tolk serve exited at start-up")
            await asyncio.sleep(0.1)
    proc.terminate()
    raise RuntimeError("tolk serve did not come up")


class Listener:
    """The interpreters' sockets: notes when the first offer of each request arrives.

    They are the minimal client of bench/wsclient.py, which stamps a frame the moment its
    bytes are read (an aiohttp client socket would add its reader task's wake-up).
    """

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.sockets: list[WsClient] = []

    async def open(self, port: int, tokens: list[str]) -> None:
        gate = asyncio.Semaphore(64)
        loop = asyncio.get_running_loop()

        async def one(token: str) -> None:
            hello: asyncio.Future[None] = loop.create_future()

            def on_text(payload: bytes) -> None:
                if not hello.done():
                    hello.set_result(None)  # the server has registered the socket
                self._on_text(payload)

            async with gate:
                headers = {"Authorization": f"Bearer {token}"}
                self.sockets.append(await open_client(port, "/ws", headers, on_text))
                await asyncio.wait_for(hello, 30)

        await asyncio.gather(*(one(t) for t in tokens))

    def _on_text(self, payload: bytes) -> None:
        if b'"type":"offer"' not in payload:
            return
        stamp = time.perf_counter()
        request_id = json.loads(payload)["offer"]["request_id"]
        if request_id not in self.arrived:
            self.arrived[request_id] = stamp
            waiter = self.waiters.pop(request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(stamp)

    async def wait_for(self, request_id: str) -> float:
        """When the first offer of a request arrived (waits up to 10 s)."""
        if request_id in self.arrived:
            return self.arrived[request_id]
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[request_id] = waiter
        return await asyncio.wait_for(waiter, 10.0)

    def close(self) -> None:
        for client in self.sockets:
            if client.transport is not None:
                client.transport.close()


async def run_load(
    http: aiohttp.ClientSession,
    base: str,
    roster: Roster,
    listener: Listener,
    requests: int,
    rate: float,
    rng: random.Random,
) -> list[float]:
    """Send `requests` at `rate` per second; latencies in milliseconds."""
    latencies: list[float] = []
    failures = 0

    async def one(n: int) -> None:
        nonlocal failures
        token = roster.counsellors[n % len(roster.counsellors)]
        headers = {"Authorization": f"Bearer {token}"}
        language = rng.choice(LANGUAGES)
        started = time.perf_counter()
        async with http.post(
            f"{base}/api/requests", json={"language": language}, headers=headers
        ) as resp:
            body = await resp.json()
        if resp.status != 201:
            failures += 1
            return
        request_id = body["request"]["id"]
        try:
            arrived = await listener.wait_for(request_id)
            latencies.append((arrived - started) * 1000)
        except TimeoutError:
            failures += 1
        async with http.delete(f"{base}/api/requests/{request_id}", headers=headers):
            pass

    tasks = []
    t0 = time.perf_counter()
    for n in range(requests):
        delay = t0 + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    if failures:
        print(f"    {failures} requests got no offer", file=sys.stderr)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def bench_stack(
    stack: str, sizes: list[int], runs: int, requests: int, rate: float
) -> dict[int, list[tuple[float, float, float]]]:
    """p50/p99 of each run, per roster size, on one stack."""
    results: dict[int, list[tuple[float, float, float]]] = {}
    for size in sizes:
        rng = random.Random(size)
        with tempfile.TemporaryDirectory() as tmp:
            if stack == "sqlite":
                url, redis_url = f"sqlite+aiosqlite:///{tmp}/bench.db", None
            else:
                await fresh_postgres()
                url, redis_url = POSTGRES_URL, REDIS_URL
            roster = await seed(url, size, rng)
            port = free_port()
            server = await start_server(url, redis_url, port)
            base = f"http://127.0.0.1:{port}"
            connector = aiohttp.TCPConnector(limit=0)
            listener = Listener()
            try:
                async with aiohttp.ClientSession(connector=connector) as http:
                    opened = time.perf_counter()
                    await listener.open(port, roster.interpreters)
                    print(
                        f"{stack} {size}: {size} sockets open in "
                        f"{time.perf_counter() - opened:.1f} s",
                        file=sys.stderr,
                    )
                    await run_load(http, base, roster, listener, 40, rate, rng)  # warm-up
                    for run in range(runs):
                        cpu = sum(cpu_seconds(server.pid))
                        lat = await run_load(http, base, roster, listener, requests, rate, rng)
                        # The server's CPU per request (create, offer, cancel, and its
                        # periodic jobs meanwhile): steadier than latency on a busy machine.
                        cpu_ms = (sum(cpu_seconds(server.pid)) - cpu) * 1000 / requests
                        p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
                        results.setdefault(size, []).append((p50, p99, cpu_ms))
                        print(
                            f"  run {run + 1}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  "
                            f"server CPU {cpu_ms:.2f} ms per request",
                            file=sys.stderr,
                        )
                    listener.close()
            finally:
                server.terminate()
                try:
                    await asyncio.wait_for(server.wait(), 20)
                except TimeoutError:
                    server.kill()
                    await server.wait()
    return results


def table(all_results: dict[str, dict[int, list[tuple[float, float, float]]]], args: Any) -> str:
    """The results as Markdown."""
    lines = [
        f"Requests per run: {args.requests} at {args.rate:g}/s; runs: {args.runs}; "
        f"languages: {len(LANGUAGES)}; policy: longest_idle (default settings).",
        "",
        "| stack | online | p50 per run (ms) | p99 per run (ms) | median p50 | median p99 "
        "| p50 vs smallest | server CPU per request (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stack, by_size in all_results.items():
        base = None
        for size, runs in sorted(by_size.items()):
            p50 = statistics.median(r[0] for r in runs)
            p99 = statistics.median(r[1] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            base = base or p50
            lines.append(
                f"| {stack} | {size:,} | {', '.join(f'{r[0]:.2f}' for r in runs)} "
                f"| {', '.join(f'{r[1]:.2f}' for r in runs)} | {p50:.2f} | {p99:.2f} "
                f"| {p50 / base:.2f}x | {cpu:.2f} |"
            )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default="sqlite,postgres")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument(
        "--write", action="store_true", help="add the table to results/ above earlier recordings"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    all_results = {}
    for stack in args.stacks.split(","):
        all_results[stack] = await bench_stack(stack, sizes, args.runs, args.requests, args.rate)
    text = table(all_results, args)
    print(text)
    if args.write:
        title = "# Dispatch latency: request to offer on the interpreter's socket"
        section = (
            f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"`python -m bench.dispatch_latency --stacks {args.stacks} --sizes {args.sizes} "
            f"--runs {args.runs}` on {os.cpu_count()} cores (shared with other work).\n\n"
            + text
            + "\n"
        )
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # A new section under the title, above the earlier recordings it leaves in place.
        rest = RESULTS.read_text().partition("\n")[2] if RESULTS.exists() else ""
        RESULTS.write_text(f"{title}\n\n{section}\n{rest.lstrip(chr(10))}")


if __name__ == "__main__":
    asyncio.run(main())
