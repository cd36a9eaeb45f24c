"""Benchmark: the service-level figures over a year of requests, on SQLite and PostgreSQL.

    python -m bench.stats_year [--requests 200000] [--runs 5] [--stacks sqlite,postgres]

Generates a year of requests (85 % answered, 90 % of those connected; expired, cancelled
and failed ones), their offers (some declined or rung out), calls and the interpreters'
online intervals straight into a fresh database, then asks the real app over HTTP for
each figure as management: the whole year, the year of one organisation, and the last 30
days. Before asking, the closed months are sealed as the hourly job does (timed too): a
month's figures then come from its summary, the rest of a period from rows. Medians and
worst of `--runs` answers per operation; the baseline, measured in the same run, is a
plain indexed `count(*)` of the same requests. Target: well under a second per figure
request. Results go to bench/results/stats_year.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert
from sqlmodel import col, select

from accounts.models import Organization, Role, User
from accounts.passwords import hash_password_sync
from bench.dispatch_latency import fresh_postgres
from calls.models import Call
from dispatch.models import InterpretationRequest, Offer
from infra.appkeys import DATABASE
from infra.config import Settings
from infra.db import Database, make_engine
from interpreters.models import Interpreter, InterpreterLanguage, PresenceInterval
from stats import summaries
from tolk import schema
from tolk.app import create_app

RESULTS = Path(__file__).resolve().parent / "results" / "stats_year.md"
POSTGRES_URL = os.environ.get(
    "TOLK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tolk_bench_stats"
)
LANGUAGES = ["uk", "ar", "fa-AF", "ti", "ru", "tr", "ckb", "kmr", "so", "ro"]
ORGANIZATIONS = 5
INTERPRETERS = 60
AGENCIES = ["Dolmetschpool", "Sprachbrücke", "Freiberuflich"]
PASSWORD = "bench-stats-2026"
BATCH = 5000
TARGET_S = 1.0


def _people(now: datetime) -> dict[str, list[dict[str, Any]]]:
    orgs = [
        {"id": f"org{i}", "name": f"Organisation {i}", "cost_center": "", "created_at": now}
        for i in range(ORGANIZATIONS + 1)
    ]
    users = [
        {
            "id": f"c{i}",
            "username": f"berater{i}",
            "password_hash": "x",
            "display_name": f"Berater {i}",
            "role": Role.COUNSELLOR.value,
            "organization_id": f"org{i}",
            "active": True,
            "machine": False,
            "created_at": now,
        }
        for i in range(ORGANIZATIONS)
    ]
    users += [
        {**users[0], "id": f"i{i}", "username": f"dolmetscher{i}", "role": "interpreter"}
        | {"display_name": f"Dolmetscher*in {i}", "organization_id": f"org{ORGANIZATIONS}"}
        for i in range(INTERPRETERS)
    ]
    users.append(
        {**users[0], "id": "lead", "username": "leitung", "role": Role.MANAGEMENT.value}
        | {"password_hash": hash_password_sync(PASSWORD), "display_name": "Leitung"}
    )
    interpreters = [
        {
            "user_id": f"i{i}",
            "number": i + 1,
            "agency": AGENCIES[i % len(AGENCIES)],
            "active": True,
            "status": "offline",
            "status_changed_at": now,
            "idle_since": now,
            "missed_offers": 0,
        }
        for i in range(INTERPRETERS)
    ]
    languages = [
        {"interpreter_id": f"i{i}", "tag": LANGUAGES[i % len(LANGUAGES)]}
        for i in range(INTERPRETERS)
    ]
    return {"orgs": orgs, "users": users, "interpreters": interpreters, "languages": languages}


def _history(
    requests: int, start: datetime, rng: random.Random
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of requests, offers and calls, in creation order over 365 days."""
    step = timedelta(days=365) / requests
    for n in range(requests):
        created = start + step * n
        org = rng.randrange(ORGANIZATIONS)
        language = LANGUAGES[min(int(rng.expovariate(0.4)), len(LANGUAGES) - 1)]
        outcome = rng.random()
        state = (
            "accepted"
            if outcome < 0.85
            else "expired"
            if outcome < 0.93
            else "cancelled"
            if outcome < 0.98
            else "failed"
        )
        rid = f"r{n:09d}"
        call_id = f"k{n:09d}" if state == "accepted" else None
        yield (
            "request",
            {
                "id": rid,
                "counsellor_id": f"c{org}",
                "organization_id": f"org{org}",
                "language": language,
                "preferences_required": False,
                "audio_only": False,
                "state": state,
                "created_at": created,
                "updated_at": created,
                "expires_at": created + timedelta(minutes=5),
                "waves": 1,
                "call_id": call_id,
            },
        )
        wait = rng.lognormvariate(3.0, 0.9)
        for k in range(rng.choice((1, 1, 2, 3))):
            offer_state = rng.choice(("declined", "expired", "revoked"))
            yield (
                "offer",
                {
                    "id": f"o{n:09d}{k}",
                    "request_id": rid,
                    "interpreter_id": f"i{rng.randrange(INTERPRETERS)}",
                    "state": offer_state,
                    "created_at": created,
                    "expires_at": created + timedelta(seconds=20),
                    "decided_at": created + timedelta(seconds=20),
                },
            )
        if call_id is None:
            continue
        interpreter = f"i{rng.randrange(INTERPRETERS)}"
        accepted = created + timedelta(seconds=wait)
        connected = accepted + timedelta(seconds=rng.uniform(1, 6)) if rng.random() < 0.9 else None
        ended = (connected or accepted) + timedelta(seconds=rng.uniform(60, 2400))
        yield (
            "offer",
            {
                "id": f"o{n:09d}a",
                "request_id": rid,
                "interpreter_id": interpreter,
                "state": "accepted",
                "created_at": created,
                "expires_at": created + timedelta(seconds=20),
                "decided_at": accepted,
            },
        )
        yield (
            "call",
            {
                "id": call_id,
                "request_id": rid,
                "counsellor_id": f"c{org}",
                "interpreter_id": interpreter,
                "organization_id": f"org{org}",
                "language": language,
                "audio_only": False,
                "state": "ended",
                "created_at": accepted,
                "connected_at": connected,
                "ended_at": ended,
                "end_reason": "hangup" if connected else "failed",
            },
        )


def _intervals(start: datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Each interpreter online on most weekdays of the year, one or two stretches a day."""
    for day in range(365):
        midnight = start + timedelta(days=day)
        if midnight.weekday() >= 5:
            continue
        for i in range(INTERPRETERS):
            if rng.random() < 0.25:
                continue
            begin = midnight + timedelta(hours=rng.uniform(6, 10))
            yield {
                "id": f"p{day:03d}{i:03d}",
                "interpreter_id": f"i{i}",
                "started_at": begin,
                "ended_at": begin + timedelta(hours=rng.uniform(2, 8)),
            }


async def generate(url: str, requests: int, now: datetime) -> None:
    """A fresh database at `url` with a year of history up to `now`."""
    await schema.upgrade(url)
    db = Database(make_engine(url))
    rng = random.Random(23)
    start = now - timedelta(days=365)
    tables = {"request": InterpretationRequest, "offer": Offer, "call": Call}
    try:
        people = _people(now)
        async with db.write() as session:
            for model, rows in (
                (Organization, people["orgs"]),
                (User, people["users"]),
                (Interpreter, people["interpreters"]),
                (InterpreterLanguage, people["languages"]),
            ):
                await session.exec(insert(model), params=rows)
        pending: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}

        async def flush() -> None:
            async with db.write() as session:
                for name in ("request", "call", "offer"):
                    if pending[name]:
                        await session.exec(insert(tables[name]), params=pending[name])
                        pending[name] = []

        for kind, row in _history(requests, start, rng):
            pending[kind].append(row)
            if len(pending["request"]) >= BATCH:
                await flush()
        await flush()
        intervals = list(_intervals(start, rng))
        for i in range(0, len(intervals), BATCH):
            async with db.write() as session:
                await session.exec(insert(PresenceInterval), params=intervals[i : i + BATCH])
        if url.startswith("postgresql"):
            engine = make_engine(url)
            async with engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
            await engine.dispose()
    finally:
        await db.close()


OPERATIONS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("languages", "/api/stats/languages", {}),
    ("heatmap", "/api/stats/heatmap", {}),
    ("interpreters", "/api/stats/interpreters", {}),
    ("agencies", "/api/stats/interpreters", {"group_by": "agency"}),
    ("languages csv de", "/api/stats/languages", {"format": "csv", "dialect": "de"}),
)


async def _timed(client: TestClient, path: str, params: dict[str, str]) -> float:
    began = time.perf_counter()
    resp = await client.get(path, params=params)
    await resp.read()
    assert resp.status == 200, await resp.text()
    return time.perf_counter() - began


async def measure(url: str, now: datetime, runs: int) -> list[tuple[str, str, float, float]]:
    """(period, operation, median s, worst s) for every figure over three periods."""
    settings = Settings(
        _env_file=None, database_url=url, secret_key="bench-stats", retention_days=3650
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    found: list[tuple[str, str, float, float]] = []
    try:
        resp = await client.post("/api/session", json={"username": "leitung", "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        year = (now - timedelta(days=365)).isoformat()
        periods: tuple[tuple[str, dict[str, str]], ...] = (
            ("year", {"from": year}),
            ("year, one organisation", {"from": year, "organization": "org1"}),
            ("30 days", {}),
        )
        db: Database = client.app[DATABASE]
        for period, params in periods:
            since = now - timedelta(days=365 if "from" in params else 30)
            baseline = []
            for _ in range(runs):
                began = time.perf_counter()
                async with db.read() as session:
                    count = select(func.count()).where(
                        col(InterpretationRequest.created_at) >= since
                    )
                    await session.exec(count)
                baseline.append(time.perf_counter() - began)
            found.append((period, "baseline count(*)", statistics.median(baseline), max(baseline)))
            for name, path, extra in OPERATIONS:
                times = [await _timed(client, path, {**params, **extra}) for _ in range(runs)]
                found.append((period, name, statistics.median(times), max(times)))
        live = [await _timed(client, "/api/stats/live", {}) for _ in range(runs)]
        found.append(("now", "live", statistics.median(live), max(live)))
    finally:
        await client.close()
    return found


def _record(
    stack: str, requests: int, rows: list[tuple[str, str, float, float]], load: tuple[float, float]
) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    machine = f"{platform.node() or 'vm'} ({os.cpu_count()} cores)"
    baseline = {period: median for period, name, median, _ in rows if name.startswith("baseline")}
    lines = [
        f"\n### {stamp} · {stack} · {requests:,} requests over 365 days · {machine} · "
        f"load average {load[0]:.1f} before, {load[1]:.1f} after\n",
        "| period | operation | median | worst | x baseline | under 1 s |",
        "|---|---|---|---|---|---|",
    ]
    for period, name, median, worst in rows:
        ratio = median / baseline[period] if period in baseline else None
        lines.append(
            f"| {period} | {name} | {median * 1000:.0f} ms | {worst * 1000:.0f} ms | "
            f"{'' if ratio is None else f'{ratio:.1f}'} | {_verdict(name, worst)} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Service-level figures over a year\n\n"
            "`python -m bench.stats_year`: see the module's docstring. Each table is one run; "
            "newest last.\n"
        )
    with RESULTS.open("a") as out:
        out.write(text)


def _verdict(operation: str, worst: float) -> str:
    # The target is for answering a person; sealing is the hourly job's, in the background.
    if operation == "seal":
        return "(job)"
    return "yes" if worst < TARGET_S else "NO"


async def run(stack: str, requests: int, runs: int, folder: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    if stack == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'stats_year.db'}"
        (folder / "stats_year.db").unlink(missing_ok=True)
    else:
        await fresh_postgres(POSTGRES_URL)
        url = POSTGRES_URL
    began = time.perf_counter()
    await generate(url, requests, now)
    print(f"{stack}: generated in {time.perf_counter() - began:.0f} s", flush=True)
    before = os.getloadavg()[0]
    db = Database(make_engine(url))
    began = time.perf_counter()
    months = await summaries.seal_months(db, now, ZoneInfo("Europe/Berlin"))
    sealing = time.perf_counter() - began
    await db.close()
    rows = await measure(url, now, runs)
    rows.append((f"hourly job, once: {len(months)} months", "seal", sealing, sealing))
    _record(stack, requests, rows, (before, os.getloadavg()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stacks", default="sqlite,postgres")
    parser.add_argument("--folder", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for stack in args.stacks.split(","):
        asyncio.run(run(stack, args.requests, args.runs, args.folder))


if __name__ == "__main__":
    main()
