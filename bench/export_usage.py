"""Benchmark: export usage records to CSV through Tolk beside `sqlite3 -csv`, same run.

    python -m bench.export_usage [--rows 1000000] [--small 100000] [--runs 3] [--baseline DIR]

Generates the records straight into SQLite files (one bulk insert per size), then times
`tolk export-usage --format csv` (the code path of GET /api/usage) and `sqlite3 -csv` of
the same table in the same order, each in a child process writing to a file; CPU time from
os.wait4, peak RSS from GNU time. Targets: Tolk <= 2x sqlite3's time, peak RSS <= 150 MB,
and time growing linearly with rows. Results go to bench/results/export_usage.md.

Besides the fast path (lines built by the database, billing.sqltext) it times the plain
Python path (billing.tables.machine_line, the same bytes) and, with `--baseline DIR`, the
export function of another source tree (a `git worktree` of an older commit) in the same
rounds, so that a change is measured against the code before it on the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "export_usage.md"
TIME_TARGET = 2.0
RSS_TARGET_MB = 150.0
ORGS = [
    ("Jobcenter Köln", "KST-4711"),
    ("Stadt Düsseldorf, Amt für Migration", "50-3"),
    ("Caritas Essen; Süd", "C-02"),
    ("Diakonie Münster", "D-17"),
    ("Sozialamt Gelsenkirchen", "S-9"),
]
INTERPRETERS = ["Jürgen Weiß", "Olga Petrenko", "Aisha Haddad", "Goitom Tesfay", "Farid Rahimi"]
LANGUAGES = ["uk", "ar", "ar-SY", "fa-AF", "ti", "ckb", "ru", "tr"]
REASONS = ["hangup"] * 18 + ["lost", "shutdown"]


def _sqlite_time(moment: datetime) -> str:
    # The text form UTCDateTime stores on SQLite.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


SEGMENT_EVERY = 10
"""Of every ten records, two are the interpreter segments of one consultation (a hand-over
three records later), as rooms write them; the others are ordinary calls."""


def _room(n: int) -> str | None:
    if n % SEGMENT_EVERY in (0, 3):
        return f"room{n - n % SEGMENT_EVERY:010d}"
    return None


def generate(path: Path, rows: int, seed: int = 42) -> None:
    """A fresh Tolk database at `path` holding `rows` usage records of one year, a fifth of
    them segments of consultations."""
    # Imported here: the `--export-only` child runs this module and must not pay for
    # alembic, which the export does not use.
    from tolk import schema

    asyncio.run(schema.upgrade(f"sqlite+aiosqlite:///{path}"))
    rng = random.Random(seed)
    org_ids = [f"org{i:02d}" for i in range(len(ORGS))]
    interpreter_ids = [f"int{i:02d}" for i in range(len(INTERPRETERS))]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / rows

    def records() -> Iterator[tuple[object, ...]]:
        for n in range(rows):
            connected = start + step * n + timedelta(seconds=rng.randrange(60))
            duration = rng.randrange(15, 3600)
            billable = -(-duration // 60) * 60
            o = rng.randrange(len(ORGS))
            i = rng.randrange(len(INTERPRETERS))
            yield (
                f"call{n:012d}",
                _sqlite_time(connected),
                _sqlite_time(connected + timedelta(seconds=duration, microseconds=250_000)),
                duration,
                billable,
                billable // 60 * 135,
                "EUR",
                rng.choice(LANGUAGES),
                org_ids[o],
                ORGS[o][0],
                ORGS[o][1],
                f"user{rng.randrange(200):04d}",
                interpreter_ids[i],
                INTERPRETERS[i],
                "tariff01",
                "Standard 2025",
                "handover" if n % SEGMENT_EVERY == 0 else rng.choice(REASONS),
                _room(n),
            )

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")  # usage rows without their call rows
        conn.execute("PRAGMA synchronous=OFF")
        with conn:
            conn.executemany(
                "INSERT INTO usage_record (call_id, connected_at, ended_at, duration_s,"
                " billable_s, amount_cents, currency, language, organization_id, organization,"
                " cost_center, counsellor_id, interpreter_id, interpreter, tariff_id, tariff,"
                " end_reason, room_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                records(),
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def same_records(baseline: bytes, ours: bytes) -> bool:
    """Whether an older tree's CSV holds our lines, maybe in another order and without the
    columns added since (a tree before `room_id` lacks the last column)."""
    old, new = baseline.splitlines(), ours.splitlines()
    # Headers hold no quoted commas, and the added columns (ids) none either.
    added = new[0].count(b",") - old[0].count(b",")
    if added > 0:
        new = [line.rsplit(b",", added)[0] for line in new]
    return old[0] == new[0] and sorted(old[1:]) == sorted(new[1:])


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    output_bytes: int


TIME = shutil.which("time") or "/usr/bin/time"
_RSS_MARK = "bench-peak-rss-kb="


def timed(argv: list[str], env: dict[str, str], out: Path, cwd: Path | None = None) -> Run:
    """Run a child with stdout to a file; wall time, CPU time and the child's peak RSS.

    The peak RSS comes from GNU time, not from os.wait4 of our own child: a forked child
    counts the pages of this (large) benchmark process it shared before exec.
    """
    wrapped = [TIME, "-f", f"{_RSS_MARK}%M", *argv] if os.path.exists(TIME) else argv
    with out.open("wb") as sink:
        began = time.perf_counter()
        child = subprocess.Popen(wrapped, stdout=sink, stderr=subprocess.PIPE, env=env, cwd=cwd)
        assert child.stderr is not None
        errors = child.stderr.read().decode()
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        child.stderr.close()
    if child.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {errors}")
    rss_kb = float(usage.ru_maxrss)  # KiB on Linux
    for line in errors.splitlines():
        if line.startswith(_RSS_MARK):
            rss_kb = float(line.removeprefix(_RSS_MARK))
    cpu = usage.ru_utime + usage.ru_stime
    return Run(elapsed, cpu, rss_kb / 1024, out.stat().st_size)


def tolk_argv() -> list[str]:
    return [sys.executable, "-m", "tolk", "export-usage", "--format", "csv"]


def export_only_argv(path: Path, plain: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "bench.export_usage", "--export-only", str(path)]
    return [*argv, "--plain"] if plain else argv


def export_only(path: Path, plain: bool) -> None:
    """The export function itself (what the CLI and GET /api/usage call), to stdout;
    `plain`: the machine CSV built in Python instead of by the database."""
    from billing.export import ExportKind, UsageFilter, export_usage
    from infra.db import Database, make_engine
    from tolk.logging import configure_logging

    configure_logging("json", "warning")  # log lines to stderr, not into the CSV

    async def run() -> None:
        db = Database(make_engine(f"sqlite+aiosqlite:///{path}"))
        out = sys.stdout.buffer

        async def write(chunk: bytes) -> None:
            out.write(chunk)

        try:
            kind = ExportKind("csv", fast_csv=not plain)
            await export_usage(db, UsageFilter(), kind, write, user_id=None, now=datetime.now(UTC))
        finally:
            await db.close()
        out.flush()

    asyncio.run(run())


SQLITE_QUERY = (
    "SELECT call_id, connected_at, ended_at, duration_s, billable_s, amount_cents, currency,"
    " language, organization_id, organization, cost_center, counsellor_id, interpreter_id,"
    " interpreter, tariff, end_reason, room_id FROM usage_record ORDER BY connected_at, call_id"
)
"""The same columns, in the plain order of calls: sqlite3 does not group consultations."""


def sqlite_argv(path: Path) -> list[str]:
    return ["sqlite3", "-csv", "-header", str(path), SQLITE_QUERY]


def variants(path: Path, baseline: Path | None) -> dict[str, tuple[list[str], Path | None]]:
    """Each way of exporting measured: its command and the source tree it runs in."""
    found: dict[str, tuple[list[str], Path | None]] = {
        "tolk": (tolk_argv(), None),
        "export only": (export_only_argv(path), None),
        "plain python": (export_only_argv(path, plain=True), None),
    }
    if baseline is not None:
        # The older tree's own export-only child, run from its folder so it imports its code.
        found["baseline"] = (export_only_argv(path), baseline)
    found["sqlite3"] = (sqlite_argv(path), None)
    return found


def measure(path: Path, runs: int, workdir: Path, baseline: Path | None) -> dict[str, list[Run]]:
    env = {**os.environ, "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    env["TOLK_LOG_LEVEL"] = "warning"
    ways = variants(path, baseline)
    found: dict[str, list[Run]] = {name: [] for name in ways}
    for round_ in range(runs):
        # Interleaved, so that all see the same page cache and machine load; the order
        # turns every round, so that none always runs first.
        names = list(ways)
        names = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in names:
            argv, cwd = ways[name]
            out = workdir / f"{name.replace(' ', '-')}.csv"
            found[name].append(timed(argv, env, out, cwd))
    return found


def median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def report(
    results: dict[int, dict[str, list[Run]]], runs: int, generate_s: dict[int, float]
) -> str:
    sizes = sorted(results)
    load = os.getloadavg()
    lines = [
        "# Usage export benchmark",
        "",
        "`python -m bench.export_usage` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load[0]:.1f} at the end: the machine is "
        f"shared), Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}.",
        "",
        "Tolk: `tolk export-usage --format csv` (the code path of `GET /api/usage?format=csv`:",
        "one server-side cursor, batches of 5000 rows, each CSV line built by SQLite in one",
        "printf), Python start-up and imports included. sqlite3: `sqlite3 -csv -header` of the",
        "same columns ordered by (connected_at, call_id): it does not put a consultation's",
        "segments together, which Tolk does (a fifth of the generated records are segments,",
        "two per consultation). Both write to a file; medians of "
        f"{runs} interleaved runs; CPU is user + system of each child (os.wait4), peak RSS",
        "its own as GNU time reports it. On a shared machine CPU time is the steadier",
        "comparison.",
        "",
        "`export only` is the same export function (`billing.export.export_usage`, which the",
        "CLI and `GET /api/usage` call) in a child that imports only what it needs: the",
        "difference to `tolk export-usage` is the CLI's start-up (it imports the whole app).",
        "",
        "| rows | Tolk variant | Tolk wall s | sqlite3 wall s | wall ratio | Tolk CPU s |"
        " sqlite3 CPU s | CPU ratio | Tolk peak RSS MB | sqlite3 peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    shown = [v for v in results[sizes[0]] if v != "sqlite3"]
    for size in sizes:
        lite = results[size]["sqlite3"]
        s, sc = median(lite, "seconds"), median(lite, "cpu_seconds")
        for variant in shown:
            tolk = results[size][variant]
            t, tc = median(tolk, "seconds"), median(tolk, "cpu_seconds")
            name = "`tolk export-usage`" if variant == "tolk" else variant
            lines.append(
                f"| {size:,} | {name} | {t:.2f} | {s:.2f} | {t / s:.2f} | {tc:.2f} | {sc:.2f}"
                f" | {tc / sc:.2f} | {max(r.peak_rss_mb for r in tolk):.0f}"
                f" | {max(r.peak_rss_mb for r in lite):.0f} |"
            )
    big, small = sizes[-1], sizes[0]
    lines.append("")
    for variant in shown:
        t_big = median(results[big][variant], "seconds")
        t_small = median(results[small][variant], "seconds")
        c_big = median(results[big][variant], "cpu_seconds")
        c_small = median(results[small][variant], "cpu_seconds")
        wall = t_big / median(results[big]["sqlite3"], "seconds")
        cpu = c_big / median(results[big]["sqlite3"], "cpu_seconds")
        rss = max(r.peak_rss_mb for r in results[big][variant])
        lines += [
            f"- {variant} at {big:,} rows: wall **{wall:.2f}x**, CPU **{cpu:.2f}x** sqlite3"
            f" (target <= {TIME_TARGET}x); peak RSS **{rss:.0f} MB** (target <="
            f" {RSS_TARGET_MB:.0f} MB); {big // small}x the rows took {t_big / t_small:.1f}x"
            f" the wall and {c_big / c_small:.1f}x the CPU time",
        ]
    lines += [
        f"- Generating the data took {', '.join(f'{generate_s[n]:.0f} s' for n in sizes)}.",
        "",
        "Runs (wall seconds / CPU seconds):",
        "",
    ]
    for size in sizes:
        for name, found in results[size].items():
            lines.append(
                f"- {size:,} {name}: "
                + ", ".join(f"{r.seconds:.2f}/{r.cpu_seconds:.2f}" for r in found)
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, leave results alone")
    parser.add_argument("--baseline", type=Path, help="another source tree to time beside")
    parser.add_argument("--export-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_only:
        export_only(args.export_only, args.plain)
        return
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 command is needed (apt-get install sqlite3)")
    results: dict[int, dict[str, list[Run]]] = {}
    generate_s: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
        workdir = Path(tmp)
        for size in sorted({args.small, args.rows}):
            path = workdir / f"usage-{size}.db"
            began = time.perf_counter()
            generate(path, size)
            generate_s[size] = time.perf_counter() - began
            print(f"generated {size:,} rows in {generate_s[size]:.1f} s", flush=True)
            results[size] = measure(path, args.runs, workdir, args.baseline)
            tolk_csv = (workdir / "tolk.csv").read_bytes()
            lite_csv = (workdir / "sqlite3.csv").read_bytes()
            # Same rows both ways (Tolk adds the `amount` column and RFC 3339 times).
            assert tolk_csv.count(b"\n") == lite_csv.count(b"\n") == size + 1
            for name in results[size]:
                if name not in ("tolk", "sqlite3", "baseline"):
                    out = workdir / f"{name.replace(' ', '-')}.csv"
                    assert out.read_bytes() == tolk_csv, f"{name} wrote other bytes"
            if "baseline" in results[size]:
                assert same_records((workdir / "baseline.csv").read_bytes(), tolk_csv)
            path.unlink()
    text = report(results, args.runs, generate_s)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        # Earlier comparisons (the `## ` sections after the table) stay below the new run.
        previous = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
        kept = previous[previous.index("\n## ") :] if "\n## " in previous else ""
        RESULTS.write_text(text + kept, encoding="utf-8")


if __name__ == "__main__":
    main()
