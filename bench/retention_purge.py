"""Benchmark: the retention purge on SQLite, and what the writes of the service feel meanwhile.

    python -m bench.retention_purge [--requests 200000] [--days 180]

Generates `--requests` ended requests spread over `--days` days (three offers each, a call
with two presence rows for nine in ten) straight into a fresh SQLite file, then runs the
purge that deletes the ones older than TOLK_RETENTION_DAYS (90) while a probe commits a
one-row write transaction every 5 ms, as the service's own writes would. Reports the
purge's time and rows, and the probe's p50 and worst wait: the purge deletes about
1,000 rows per transaction so that no request waits for the whole purge. Results are added
to bench/results/retention_purge.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infra.config import Settings
from infra.db import Database, make_engine
from tolk import retention, schema

RESULTS = Path(__file__).resolve().parent / "results" / "retention_purge.md"


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(path: Path, requests: int, days: int, now: datetime) -> None:
    """A fresh database holding `requests` ended requests of the last `days` days."""
    asyncio.run(schema.upgrade(f"sqlite+aiosqlite:///{path}"))
    conn = sqlite3.connect(path)
    t0 = _t(now - timedelta(days=days))
    conn.execute("INSERT INTO organization VALUES ('org', 'Org', 'CC', ?)", (t0,))
    conn.execute(
        "INSERT INTO user_account (id, username, password_hash, display_name, role,"
        " organization_id, active, created_at, machine)"
        " VALUES ('c', 'c', '!', 'C', 'counsellor', 'org', 1, ?, 0),"
        " ('i', 'i', '!', 'I', 'interpreter', 'org', 1, ?, 0)",
        (t0, t0),
    )
    conn.execute(
        "INSERT INTO interpreter (user_id, active, status, status_changed_at, idle_since,"
        " missed_offers) VALUES ('i', 1, 'offline', ?, ?, 0)",
        (t0, t0),
    )
    step = timedelta(days=days) / requests
    start = now - timedelta(days=days)
    reqs: list[tuple[str, ...]] = []
    offers: list[tuple[str, ...]] = []
    calls: list[tuple[str, ...]] = []
    presence: list[tuple[str, ...]] = []
    for n in range(requests):
        at = _t(start + n * step)
        rid = f"r{n}"
        reqs.append((rid, at, at, at))
        offers.extend((f"o{n}-{k}", rid, at, at) for k in range(3))
        if n % 10:
            calls.append((f"c{n}", rid, at, at, at))
            presence.extend(((f"s{n}-a", f"c{n}", at), (f"s{n}-b", f"c{n}", at)))
    conn.executemany(
        "INSERT INTO interpretation_request (id, counsellor_id, organization_id, language,"
        " preferences_required, audio_only, state, created_at, updated_at, expires_at, waves)"
        " VALUES (?, 'c', 'org', 'uk', 0, 0, 'accepted', ?, ?, ?, 1)",
        reqs,
    )
    conn.executemany(
        "INSERT INTO offer (id, request_id, interpreter_id, state, created_at, expires_at)"
        " VALUES (?, ?, 'i', 'declined', ?, ?)",
        offers,
    )
    conn.executemany(
        "INSERT INTO call (id, request_id, counsellor_id, interpreter_id, organization_id,"
        " language, audio_only, state, created_at, connected_at, ended_at)"
        " VALUES (?, ?, 'c', 'i', 'org', 'uk', 0, 'ended', ?, ?, ?)",
        calls,
    )
    conn.executemany(
        "INSERT INTO call_presence (socket_id, call_id, user_id, instance_id, seen_at)"
        " VALUES (?, ?, 'c', 'x', ?)",
        presence,
    )
    conn.commit()
    conn.close()


async def measure(path: Path, now: datetime) -> tuple[float, dict[str, int], list[float]]:
    """Run the purge beside a probe of small writes; the purge's seconds, rows, probe waits."""
    db = Database(make_engine(f"sqlite+aiosqlite:///{path}"))
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{path}")
    waits: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            began = time.perf_counter()
            async with db.write() as session:
                await session.connection()
            waits.append(time.perf_counter() - began)
            await asyncio.sleep(0.005)

    task = asyncio.create_task(probe())
    began = time.perf_counter()
    deleted = await retention.purge(db, settings, now)
    took = time.perf_counter() - began
    done.set()
    await task
    await db.close()
    return took, deleted, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tolk.db"
        began = time.perf_counter()
        generate(path, args.requests, args.days, now)
        print(f"generated in {time.perf_counter() - began:.1f} s")
        took, deleted, waits = asyncio.run(measure(path, now))
    waits_ms = sorted(w * 1000 for w in waits)
    rows = sum(deleted.values())
    line = (
        f"| {datetime.now(UTC):%Y-%m-%d %H:%M} | {platform.node()} ({os.cpu_count()} cores) "
        f"| {args.requests:,} over {args.days} d | {rows:,} | {took:.1f} s "
        f"| {rows / took:,.0f} | {statistics.median(waits_ms):.1f} ms | {waits_ms[-1]:.0f} ms "
        f"| {len(waits_ms)} |"
    )
    print(deleted)
    print(line)
    header = (
        "# Retention purge on SQLite\n\n"
        "`python -m bench.retention_purge`: ended requests (3 offers each, a call with two\n"
        "presence rows for 9 in 10) spread over the days; the purge deletes those older than\n"
        "90 days in batches of 1,000 rows per transaction while a probe commits a one-row\n"
        "write every 5 ms. Newest first.\n\n"
        "| when | machine | data | rows deleted | purge | rows/s | probe p50 | probe worst "
        "| probes |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    old = RESULTS.read_text() if RESULTS.exists() else header
    head, _, rest = old.partition("|---|---|---|---|---|---|---|---|---|\n")
    RESULTS.write_text(head + "|---|---|---|---|---|---|---|---|---|\n" + line + "\n" + rest)


if __name__ == "__main__":
    main()
