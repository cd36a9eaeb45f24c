"""Before/after in the same minutes: dispatch latency and relay throughput of this tree
against a baseline commit, run in alternating rounds so that the machine's load falls on
both alike.

    python -m bench.compare [--base main] [--rounds 5] [--arm plain=TOLK_FAST_PATHS=false]
                            [--also COMMIT] [--stack sqlite|postgres] [--rate 20]
                            [--requests 300] [--seconds 0] [--write]

The baseline is checked out into a temporary git worktree; each side's server runs from
its own tree (PYTHONPATH) on this virtual environment; `--also` adds further commits as arms
of their own (say main beside an older baseline). A round runs every arm once, in an
order that rotates from round to round. Per arm: dispatch p50 and p99 (SQLite, or with
`--stack postgres` PostgreSQL and Redis, in a database of the run's own; 1,000 interpreters
online, `bench.dispatch_latency`'s load) with the server's CPU per request, and relayed
messages/s (`bench.signaling_relay`'s pairs, Tolk only; `--seconds 0` leaves it out).
Prints medians and each arm's ratio to the baseline; with --write adds the table to
bench/results/compare.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import signaling_relay

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "compare.md"
_P50 = re.compile(
    r"run \d+: p50 ([0-9.]+) ms\s+p99 ([0-9.]+) ms.*server CPU ([0-9.]+) ms per request"
)


@dataclass
class Arm:
    """One side of the comparison: a source tree and the environment its server gets."""

    name: str
    tree: Path
    env: dict[str, str] = field(default_factory=dict)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    """The server's CPU per request of each dispatch run: steadier than latency under load."""
    rate: list[float] = field(default_factory=list)
    relay_cpu_us: list[float] = field(default_factory=list)
    relay_db: str = ""
    relay_setup: Path = Path()


@contextlib.contextmanager
def baseline_tree(commit: str) -> Iterator[tuple[Path, str]]:
    """A detached worktree of `commit`, removed afterwards; yields its path and full hash."""
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="tolk-base-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), full],
            check=True,
            capture_output=True,
        )
        try:
            yield path, full
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def _own_database() -> str:
    """A PostgreSQL database of the run's own: another benchmark may be using the default."""
    default = "postgresql+asyncpg://postgres@127.0.0.1:5432/tolk_bench"
    url = os.environ.get("TOLK_BENCH_POSTGRES_URL", default)
    return url.rsplit("/", 1)[0] + f"/tolk_compare_{os.getpid()}"


def dispatch_p50(
    arm: Arm, requests: int, bench_dir: Path, args: argparse.Namespace
) -> tuple[float, float, float]:
    """One run of this tree's bench.dispatch_latency (copied alone into `bench_dir`) with
    everything else, the server included, from the arm's tree: its p50, its p99 and the
    server's CPU per request, in milliseconds."""
    env = {**os.environ, **arm.env, "PYTHONPATH": str(arm.tree)}
    if args.stack == "postgres":
        env["TOLK_BENCH_POSTGRES_URL"] = _own_database()
    argv = ["-m", "bench.dispatch_latency", "--stacks", args.stack, "--sizes", "1000"]
    argv += ["--runs", "1", "--rate", str(args.rate)]
    out = subprocess.run(
        [sys.executable, *argv, "--requests", str(requests)],
        cwd=bench_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"dispatch_latency failed for {arm.name}: {out.stderr[-3000:]}")
    found = _P50.findall(out.stderr)
    if not found:
        raise RuntimeError(f"no p50 from {arm.name}: {out.stderr[-2000:]}")
    return float(found[-1][0]), float(found[-1][1]), float(found[-1][2])


_SEED = (
    "import asyncio, json, sys\n"
    "from bench.signaling_relay import seed_tolk\n"
    "print(json.dumps(asyncio.run(seed_tolk(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))"
)


def relay_seed(arm: Arm, tmp: Path, args: argparse.Namespace) -> None:
    """The relay's database for the arm, made by the arm's own code and its own seeding
    (schemas and models differ between commits)."""
    arm.relay_db = f"sqlite+aiosqlite:///{tmp}/relay-{id(arm)}.db"
    out = subprocess.run(
        [sys.executable, "-c", _SEED, arm.relay_db, str(args.pairs), str(args.idle)],
        cwd=arm.tree,
        env={**os.environ, "PYTHONPATH": str(arm.tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"relay seed failed for {arm.name}: {out.stderr[-3000:]}")
    arm.relay_setup = tmp / f"relay-{id(arm)}.json"
    arm.relay_setup.write_text(out.stdout.strip().splitlines()[-1])


async def relay_run(arm: Arm, tmp: Path, args: Any) -> dict[str, Any]:
    """One relay run of bench.signaling_relay with the arm's server."""
    args.before = arm.tree  # the "before" kind runs the server from this tree
    saved = dict(os.environ)
    os.environ.update(arm.env)
    try:
        return await signaling_relay.one_run("before", tmp, arm.relay_db, arm.relay_setup, args)
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def run(arms: list[Arm], args: argparse.Namespace) -> None:
    relay_args = argparse.Namespace(
        seconds=args.seconds, warmup=2.0, idle=args.idle, mode="pairs", before=None
    )
    with tempfile.TemporaryDirectory(prefix="tolk-compare-") as tmp_name:
        tmp = Path(tmp_name)
        # The load generators are this tree's for every arm: the baseline's own copy may
        # lag behind its schema.
        bench_dir = tmp / "load"
        shutil.copytree(
            ROOT / "bench", bench_dir / "bench", ignore=shutil.ignore_patterns("peerjs", "results")
        )
        for arm in arms if args.seconds else ():
            await asyncio.to_thread(relay_seed, arm, tmp, args)
        for n in range(args.rounds):
            shift = n % len(arms)
            for arm in arms[shift:] + arms[:shift]:
                p50, p99, cpu = (
                    await asyncio.to_thread(dispatch_p50, arm, args.requests, bench_dir, args)
                    if args.requests
                    else (float("nan"), float("nan"), float("nan"))
                )
                relay = (
                    await relay_run(arm, tmp, relay_args)
                    if args.seconds
                    else {"rate": float("nan"), "cpu_us_per_msg": float("nan")}
                )
                arm.p50_ms.append(p50)
                arm.p99_ms.append(p99)
                arm.cpu_ms.append(cpu)
                arm.rate.append(relay["rate"])
                arm.relay_cpu_us.append(relay["cpu_us_per_msg"])
                print(
                    f"round {n + 1} {arm.name}: dispatch p50 {p50:.2f} ms, p99 {p99:.2f} ms "
                    f"({cpu:.2f} ms CPU "
                    f"per request), relay "
                    f"{relay['rate']:,.0f} msg/s ({relay['cpu_us_per_msg']:.1f} µs CPU/msg)",
                    flush=True,
                )


async def _drop_own_database() -> None:
    import asyncpg

    dsn = _own_database().replace("+asyncpg", "")
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def table(arms: list[Arm], base_hash: str, args: argparse.Namespace, loads: list[str]) -> str:
    """The medians and ratios as Markdown."""
    base = arms[0]
    bp50, brate = statistics.median(base.p50_ms), statistics.median(base.rate)
    bp99 = statistics.median(base.p99_ms)
    stack = "SQLite" if args.stack == "sqlite" else "PostgreSQL with Redis"
    env = " ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("TOLK_"))
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{env + ' ' if env else ''}python -m bench.compare --base {args.base} "
        f"--rounds {args.rounds} --stack {args.stack} --rate {args.rate:g} "
        f"--requests {args.requests} --seconds {args.seconds:g}` "
        f"(baseline {base_hash[:7]}) on {os.cpu_count()} cores shared with other work; "
        f"load average before / after: {loads[0]} / {loads[1]}.",
        "",
        f"Dispatch: {stack}, 1,000 interpreters online, {args.requests} requests at "
        f"{args.rate:g}/s per "
        f"run. Relay: {args.pairs} pairs, {args.seconds:g} s per run. Arms alternate within "
        "each round (order rotating); medians of the rounds, ratio = arm / baseline.",
        "",
    ]
    dispatch, relay = args.requests > 0, args.seconds > 0
    # A part that did not run (--requests 0, --seconds 0) gets no columns.
    head = ["arm"]
    if dispatch:
        head += ["dispatch p50 per round (ms)", "median", "ratio", "p99 per round (ms)"]
        head += ["median", "ratio", "dispatch server CPU ms/request (median)", "ratio"]
    if relay:
        head += ["relay msg/s per round", "median", "ratio", "relay CPU µs/msg (median)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    bcpu = statistics.median(base.cpu_ms) if dispatch else 0.0
    for arm in arms:
        cells = [arm.name]
        if dispatch:
            p50, p99 = statistics.median(arm.p50_ms), statistics.median(arm.p99_ms)
            cpu = statistics.median(arm.cpu_ms)
            cells += [", ".join(f"{v:.2f}" for v in arm.p50_ms), f"{p50:.2f}", f"{p50 / bp50:.2f}x"]
            cells += [", ".join(f"{v:.2f}" for v in arm.p99_ms), f"{p99:.2f}", f"{p99 / bp99:.2f}x"]
            cells += [f"{cpu:.2f}", f"{cpu / bcpu:.2f}x"]
        if relay:
            rate = statistics.median(arm.rate)
            cells += [", ".join(f"{v:,.0f}" for v in arm.rate), f"{rate:,.0f}"]
            cells += [f"{rate / brate:.2f}x", f"{statistics.median(arm.relay_cpu_us):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="the baseline commit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--requests", type=int, default=300, help="per dispatch run (0: relay only)"
    )
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0, help="per relay run (0: none)")
    parser.add_argument("--stack", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate", type=float, default=20.0, help="dispatch requests per second")
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument(
        "--arm",
        action="append",
        default=[],
        help="NAME=VAR=VALUE[,VAR=VALUE]: this tree again with these server settings",
    )
    parser.add_argument(
        "--also", action="append", default=[], help="another commit to run as an arm of its own"
    )
    parser.add_argument("--write", action="store_true", help="add the table to results/")
    args = parser.parse_args()
    # Stopped from outside, it still removes the baseline's worktree.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    loads = [load_average()]
    with contextlib.ExitStack() as trees:
        base_path, base_hash = trees.enter_context(baseline_tree(args.base))
        arms = [Arm(f"baseline {base_hash[:7]}", base_path)]
        for commit in args.also:
            path, full = trees.enter_context(baseline_tree(commit))
            arms.append(Arm(f"{commit} ({full[:7]})", path))
        arms.append(Arm("this tree", ROOT))
        for spec in args.arm:
            name, _, assignments = spec.partition("=")
            env = dict(a.split("=", 1) for a in assignments.split(","))
            arms.append(Arm(name, ROOT, env))
        try:
            asyncio.run(run(arms, args))
        finally:
            if args.stack == "postgres":
                asyncio.run(_drop_own_database())
    loads.append(load_average())
    text = table(arms, base_hash, args, loads)
    print(text)
    if args.write:
        title = "# Before and after in the same minutes (bench.compare)"
        rest = RESULTS.read_text().partition("\n")[2] if RESULTS.exists() else ""
        RESULTS.write_text(f"{title}\n\n{text}\n{rest.lstrip(chr(10))}")


if __name__ == "__main__":
    main()
