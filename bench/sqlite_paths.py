"""SQLite's fast path against the plain one, per operation, on an otherwise idle loop.

    python -m bench.sqlite_paths [--operations 2000] [--rounds 5] [--busy-ms 0]

Times three operations on each path (infra/sqlite_fast.py; `make_engine(fast_sqlite=...)`),
alternating the paths round by round: a read session with one query by key, a write
session with one insert, and `write_sync` with one insert. With --busy-ms, a task keeps the
loop busy for that long every millisecond, as a server's other work would: each hand-off
to a driver thread then waits for the loop to come round. Prints medians in microseconds
and the plain path's time over the fast path's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Connection, text

from infra.db import Database, make_engine


def _insert_sync(conn: Connection, name: str) -> None:
    conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": name})


async def _read(db: Database, n: int) -> None:
    async with db.read() as s:
        conn = await s.connection()
        await conn.execute(text("SELECT name FROM t WHERE id = :i"), {"i": n % 100 + 1})


async def _write(db: Database, n: int) -> None:
    async with db.write() as s:
        conn = await s.connection()
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": f"w{n}"})


async def _write_sync(db: Database, n: int) -> None:
    await db.write_sync(_insert_sync, f"s{n}")


OPERATIONS: dict[str, Callable[[Database, int], Awaitable[None]]] = {
    "read session, one query": _read,
    "write session, one insert": _write,
    "write_sync, one insert": _write_sync,
}


async def _busy(busy_s: float) -> None:
    while True:
        until = time.perf_counter() + busy_s
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(0.001)


async def _time(db: Database, op: Callable[[Database, int], Awaitable[None]], count: int) -> float:
    """Median microseconds of `count` runs of one operation."""
    took = []
    for n in range(count):
        started = time.perf_counter()
        await op(db, n)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--busy-ms", type=float, default=0.0)
    args = parser.parse_args()
    results: dict[tuple[str, bool], list[float]] = {}
    busy = asyncio.create_task(_busy(args.busy_ms / 1000)) if args.busy_ms else None
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {}
        for fast in (True, False):
            dbs[fast] = Database(
                make_engine(f"sqlite+aiosqlite:///{Path(tmp) / f'{fast}.db'}", fast_sqlite=fast)
            )
            async with dbs[fast].write() as s:
                conn = await s.connection()
                await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
                for n in range(100):
                    await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": str(n)})
        for _ in range(args.rounds):
            for fast in (True, False):
                for name, op in OPERATIONS.items():
                    results.setdefault((name, fast), []).append(
                        await _time(dbs[fast], op, args.operations)
                    )
        for db in dbs.values():
            await db.close()
    if busy is not None:
        busy.cancel()
    print(f"busy loop: {args.busy_ms:g} ms of every ~{args.busy_ms + 1:g} ms")
    print("| operation | fast (µs) | plain (µs) | plain / fast | saved (µs) |")
    print("|---|---|---|---|---|")
    for name in OPERATIONS:
        fast_us = statistics.median(results[(name, True)])
        plain_us = statistics.median(results[(name, False)])
        print(
            f"| {name} | {fast_us:.0f} | {plain_us:.0f} | {plain_us / fast_us:.2f}x "
            f"| {plain_us - fast_us:.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
