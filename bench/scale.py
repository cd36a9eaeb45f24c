"""Regional scale: two `tolk serve` instances on PostgreSQL and Redis behind the nginx of
deploy/, with thousands of interpreters and counsellors connected and calls at a rate.

    python -m bench.scale [--interpreters 5000] [--counsellors 10000] [--rates 2,6]
        [--seconds 120] [--watching 0.1] [--languages-interval 1] [--relay-rounds 1]
        [--write] [--no-relay]

One command, bounded in time: a fresh PostgreSQL database (dropped after), a Redis server
of its own, the deployment's nginx (TLS) in front of two instances, and the people of
`bench.scale_load` in one more process. Each phase sends requests at its rate; each request
is offered, accepted after a human-like delay (or declined, let ring out, cancelled), and
the call exchanges ~50 signals, is held and hung up; presence changes and reconnects run
beside it. Counsellors watch the live language figures as their pages do: a share of them
(`--watching`: pages in front and idle) and each one while choosing a language for a
request, with the instances sending them at most once per `--languages-interval`
(`TOLK_LANGUAGES_INTERVAL_S`, as docs/operations.md recommends at this size). Recorded
per phase: request -> offer, accept -> `call.updated`, the relay of signals between
instances and within one, RSS and CPU per instance, PostgreSQL
transactions/s, Redis commands and publishes/s, errors and lost signals. Then, in the same
run, `bench.signaling_relay`'s single-instance relay beside PeerJS (medians per server, and
the CPU per message paired window by window: `--relay-rounds` interleaves the two servers'
windows in rounds, so that a pair is measured seconds apart). With --write the
results go to bench/results/scale.md, above earlier recordings.

Descriptors: every socket holds one in the load generator, one in an instance and two in
nginx; the run raises its own limit (and so its children's) and nginx's
(`worker_rlimit_nofile`, `worker_connections`) to fit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis

from bench import signaling_relay
from bench.dispatch_latency import LANGUAGES, seed
from bench.pace import kernel_pace, machine_pace
from bench.procstat import cpu_seconds, rss_bytes
from interpreters.models import Presence
from tests.backends import postgres_execute
from tests.deploy.nginx import Nginx
from tests.integration.server import Backend, TolkServer
from tests.own_redis import OwnRedis

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.md"
NGINX_WORKERS = 4
ADMIN_DSN = os.environ.get(
    "TOLK_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def load_average() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's (and its children's) open-file limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # not root: as far as the hard limit goes
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Stack:
    """The database, Redis, two instances and nginx of one run."""

    def __init__(self, tmp: Path, sockets: int, languages_interval_s: float) -> None:
        self.tmp = tmp
        self.sockets = sockets
        self.languages_interval_s = languages_interval_s
        self.database = "tolk_scale_" + secrets.token_hex(4)
        base = ADMIN_DSN.rsplit("/", 1)[0]
        self.dsn = f"{base}/{self.database}"
        self.url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        self.redis = OwnRedis(tmp)
        self.instances: list[TolkServer] = []
        self.nginx: Nginx | None = None

    async def create_database(self) -> None:
        await postgres_execute(f'CREATE DATABASE "{self.database}"', ADMIN_DSN)

    async def drop_database(self) -> None:
        await postgres_execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)', ADMIN_DSN)

    async def start(self) -> None:
        """Redis, two instances sharing secret and namespace, and nginx in front."""
        self.redis.start()
        shared = {
            "TOLK_SECRET_KEY": secrets.token_hex(16),
            "TOLK_REDIS_NAMESPACE": "scale-" + secrets.token_hex(3),
            "TOLK_TRUSTED_PROXIES": '["127.0.0.1"]',
            "TOLK_LOG_LEVEL": "warning",
            "TOLK_LANGUAGES_INTERVAL_S": str(self.languages_interval_s),
        }
        for name in ("a", "b"):
            folder = self.tmp / name
            folder.mkdir()
            server = TolkServer(folder, Backend("postgres", self.url, self.redis.url), **shared)
            await server.start(timeout_s=60)
            self.instances.append(server)
        # A process may hold no more descriptors than the hard limit (raising it needs
        # CAP_SYS_RESOURCE), and each socket holds two in nginx: spread over workers, with
        # room for an uneven share (a full worker stops accepting; the others take over).
        workers = NGINX_WORKERS
        per_worker = 2 * self.sockets * 3 // (2 * workers) + 1000
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        self.nginx = Nginx(
            self.tmp / "nginx",
            [s.port for s in self.instances],
            min(per_worker, hard - 200),
            workers=workers,
        )
        self.nginx.start()

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.instances if s.proc is not None]

    def nginx_pids(self) -> list[int]:
        """nginx's master and its workers."""
        if self.nginx is None or self.nginx.proc is None:
            return []
        master = self.nginx.proc.pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [master, *(int(c) for c in children)]

    async def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.instances:
            server.stop()
        self.redis.stop()
        await self.drop_database()


async def sockets_open(
    http: aiohttp.ClientSession, port: int, metric: str = "tolk_sockets_open{"
) -> int:
    """The instance's open sockets (or those of another metric), from its own /metrics."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    return int(
        sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(metric))
    )


REQUEST_SECONDS = ("tolk_http_request_seconds", 'route="/api/requests"')
LOOP_LAG = ("tolk_event_loop_lag_seconds", "")
FULL_GC = ("tolk_gc_pause_seconds", 'generation="2"')
YOUNG_GCS = (
    ("tolk_gc_pause_seconds", 'generation="0"'),
    ("tolk_gc_pause_seconds", 'generation="1"'),
)
"""The collections of the two young generations: each walks every object made since the one
before it, and held an instance's loop for 30-120 ms at a time before their thresholds
were lowered (bench/results/scale.md, 2026-12-06)."""


async def histogram_buckets(
    http: aiohttp.ClientSession, port: int, histogram: tuple[str, str]
) -> dict[float, float]:
    """How many observations of one of the instance's histograms (name, label) fell within
    each of its bounds (seconds): for POST /api/requests, the time the instance spent
    itself, without the balancer's."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    name, label = histogram
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "_bucket{") and label in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def count_over(start: list[dict[float, float]], end: list[dict[float, float]], bound: float) -> int:
    """How many observations between two readings, over all instances, exceeded `bound`."""
    over = 0.0
    for before, after in zip(start, end, strict=True):
        total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
        over += total - (after.get(bound, 0.0) - before.get(bound, 0.0))
    return int(over)


def within(start: list[dict[float, float]], end: list[dict[float, float]], share: float) -> float:
    """The smallest histogram bound (ms) within which `share` of the requests between two
    readings were answered, over all instances."""
    counts: dict[float, float] = {}
    for before, after in zip(start, end, strict=True):
        for bound, count in after.items():
            counts[bound] = counts.get(bound, 0.0) + count - before.get(bound, 0.0)
    total = counts.get(float("inf"), 0.0)
    for bound in sorted(counts):
        if total and counts[bound] >= share * total:
            return bound * 1000
    return float("nan")


async def snapshot(
    stack: Stack,
    db: asyncpg.Connection,
    red: aioredis.Redis,
    load_pid: int,
    http: aiohttp.ClientSession,
) -> dict[str, Any]:
    """The counters a phase is measured by, read now."""
    xacts = await db.fetchval(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
        stack.database,
    )
    stats = await red.info("stats")
    commands = await red.info("commandstats")
    return {
        "at": time.perf_counter(),
        "cpu": [sum(cpu_seconds(pid)) for pid in stack.pids()],
        "cpu_nginx": sum(sum(cpu_seconds(pid)) for pid in stack.nginx_pids()),
        "cpu_load": sum(cpu_seconds(load_pid)),
        "rss": [rss_bytes(pid) for pid in stack.pids()],
        "xacts": int(xacts),
        "redis_commands": int(stats["total_commands_processed"]),
        "redis_publishes": int(commands.get("cmdstat_publish", {}).get("calls", 0)),
        "load": load_average(),
        **{
            key: [await histogram_buckets(http, s.port, histogram) for s in stack.instances]
            for key, histogram in (
                ("requests", REQUEST_SECONDS),
                ("loop_lag", LOOP_LAG),
                ("full_gc", FULL_GC),
                ("young_gc_0", YOUNG_GCS[0]),
                ("young_gc_1", YOUNG_GCS[1]),
            )
        },
    }


def phase_figures(start: dict[str, Any], end: dict[str, Any], own_reads: int) -> dict[str, Any]:
    """Rates between two snapshots; `own_reads` are the load generator's own queries."""
    seconds = end["at"] - start["at"]
    # pg_stat_database counts this connection's own statements too: two per snapshot.
    xacts = end["xacts"] - start["xacts"] - own_reads - 2
    return {
        "seconds": seconds,
        "cpu_percent": [
            (e - s) / seconds * 100 for s, e in zip(start["cpu"], end["cpu"], strict=True)
        ],
        "rss_mb": [r / 2**20 for r in end["rss"]],
        "cpu_nginx_percent": (end["cpu_nginx"] - start["cpu_nginx"]) / seconds * 100,
        "cpu_load_percent": (end["cpu_load"] - start["cpu_load"]) / seconds * 100,
        "pg_xacts_per_s": xacts / seconds,
        "redis_commands_per_s": (end["redis_commands"] - start["redis_commands"]) / seconds,
        "redis_publishes_per_s": (end["redis_publishes"] - start["redis_publishes"]) / seconds,
        "load": end["load"],
        "request_p50_within_ms": within(start["requests"], end["requests"], 0.5),
        "request_p99_within_ms": within(start["requests"], end["requests"], 0.99),
        "loop_lag_p99_within_ms": within(start["loop_lag"], end["loop_lag"], 0.99),
        "loop_lags_over_25ms": count_over(start["loop_lag"], end["loop_lag"], 0.025),
        "full_gcs": count_over(start["full_gc"], end["full_gc"], 0.0),
        "full_gcs_over_25ms": count_over(start["full_gc"], end["full_gc"], 0.025),
        **{
            f"young_gcs_{generation}{over}": count_over(
                start[f"young_gc_{generation}"], end[f"young_gc_{generation}"], bound
            )
            for generation in (0, 1)
            for over, bound in (("", 0.0), ("_over_25ms", 0.025))
        },
    }


async def drive(stack: Stack, setup_file: Path) -> dict[str, Any]:
    """Run the load generator; read the stack's counters at each of its marks."""
    out: dict[str, Any] = {"phases": []}
    db = await asyncpg.connect(ADMIN_DSN)
    red = aioredis.from_url(stack.redis.url, decode_responses=True)
    http = aiohttp.ClientSession()
    await asyncio.sleep(2)
    out["rss_started_mb"] = [rss_bytes(pid) / 2**20 for pid in stack.pids()]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.scale_load", str(setup_file),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdin is not None
    marks: dict[str, dict[str, Any]] = {}
    try:
        while line := (await proc.stdout.readline()).decode().strip():
            print(f"  [{datetime.now(UTC):%H:%M:%S}] {line[:200]}", flush=True)
            word, *rest = line.split(" ", 1)
            if word == "HALF":
                await asyncio.sleep(3)
                out["rss_half_mb"] = [rss_bytes(pid) / 2**20 for pid in stack.pids()]
                out["sockets_half"] = [await sockets_open(http, s.port) for s in stack.instances]
            elif word == "CONNECTED":
                await asyncio.sleep(3)  # let the instances settle before reading RSS
                out["connect_s"] = float(rest[0].split()[1])
                out["rss_connected_mb"] = [rss_bytes(pid) / 2**20 for pid in stack.pids()]
                out["sockets"] = [await sockets_open(http, s.port) for s in stack.instances]
                out["watching"] = [
                    await sockets_open(http, s.port, "tolk_sockets_watching_languages ")
                    for s in stack.instances
                ]
            elif word == "PHASE":
                marks[rest[0]] = await snapshot(stack, db, red, proc.pid, http)
            elif word == "RESULT":
                out["load"] = json.loads(rest[0])
                break
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        await http.close()
        await red.aclose()
        await db.close()
    for phase in out["load"]["phases"]:
        # Rates over the steady part, while requests were sent (not the drain after it).
        start, end = marks[f"{phase['rate']} start"], marks[f"{phase['rate']} sent"]
        phase["stack"] = phase_figures(start, end, phase["counts"].get("room_reads", 0))
        out["phases"].append(phase)
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _per_instance(values: list[float], fmt: str) -> str:
    return " / ".join(fmt.format(v) for v in values)


def _quantiles(p: dict[str, Any], name: str) -> str:
    text = f"{_ms(p[name + '_p50'])} / {_ms(p[name + '_p99'])}"
    if name + "_p99_interval" in p:
        low, high = p[name + "_p99_interval"]
        low_text = _ms(low) if low is not None else "-"
        high_text = _ms(high) if high is not None else "- (too few)"
        text += f" [{low_text}, {high_text}]"
    return text + (f" (n={p[name + '_n']})" if name.startswith("signal") else "")


def _ratio(p: dict[str, Any]) -> str:
    cross, same = p["signal_cross_p99"], p["signal_same_p99"]
    return f"{cross / same:.2f}x" if cross and same else "-"


def _counts(p: dict[str, Any], *names: str) -> str:
    return " / ".join(str(p["counts"].get(n, 0)) for n in names)


def _errors(p: dict[str, Any]) -> str:
    listed = ", ".join(f"{k} {v}" for k, v in sorted(p["errors"].items()))
    return str(sum(p["errors"].values())) + (f" ({listed})" if listed else "")


def _redis(p: dict[str, Any]) -> str:
    stack = p["stack"]
    return f"{stack['redis_commands_per_s']:.0f} ({stack['redis_publishes_per_s']:.0f})"


PHASE_ROWS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("requests / calls completed", lambda p: _counts(p, "requests", "calls")),
    ("declines / ring-outs / cancels", lambda p: _counts(p, "declines", "rang_out", "cancels")),
    ("presence changes / reconnects", lambda p: _counts(p, "presence_changes", "reconnects")),
    (
        "request -> offer p50 / p99 [90 % interval of the p99] (ms)",
        lambda p: _quantiles(p, "offer"),
    ),
    (
        "accept -> call.updated p50 / p99 [90 % interval of the p99] (ms)",
        lambda p: _quantiles(p, "accept"),
    ),
    ("signal across instances p50 / p99 (ms)", lambda p: _quantiles(p, "signal_cross")),
    ("signal within one instance p50 / p99 (ms)", lambda p: _quantiles(p, "signal_same")),
    ("cross p99 / same p99", _ratio),
    ("load generator's own loop lag p50 / p99 (ms)", lambda p: _quantiles(p, "lag")),
    (
        "POST /api/requests in the instances, p50 / p99 within (ms)",
        lambda p: (
            f"{p['stack']['request_p50_within_ms']:g} / {p['stack']['request_p99_within_ms']:g}"
        ),
    ),
    (
        "the instances' event loop: lag p99 within (ms) / lags over 25 ms",
        lambda p: f"{p['stack']['loop_lag_p99_within_ms']:g} / {p['stack']['loop_lags_over_25ms']}",
    ),
    (
        "young garbage collections (generation 0, 1) / of them over 25 ms",
        lambda p: (
            f"{p['stack']['young_gcs_0']}, {p['stack']['young_gcs_1']} / "
            f"{p['stack']['young_gcs_0_over_25ms']}, {p['stack']['young_gcs_1_over_25ms']}"
        ),
    ),
    (
        "full garbage collections / of them over 25 ms",
        lambda p: f"{p['stack']['full_gcs']} / {p['stack']['full_gcs_over_25ms']}",
    ),
    (
        "CPU per instance (% of a core)",
        lambda p: _per_instance(p["stack"]["cpu_percent"], "{:.0f}"),
    ),
    (
        "CPU of nginx / of the load generator (%)",
        lambda p: f"{p['stack']['cpu_nginx_percent']:.0f} / {p['stack']['cpu_load_percent']:.0f}",
    ),
    ("RSS per instance at the end (MB)", lambda p: _per_instance(p["stack"]["rss_mb"], "{:.0f}")),
    ("PostgreSQL transactions/s", lambda p: f"{p['stack']['pg_xacts_per_s']:.1f}"),
    ("Redis commands/s (of them PUBLISH)", _redis),
    (
        "languages.updated frames received/s",
        lambda p: f"{p['counts'].get('languages_in_window', 0) / p['stack']['seconds']:.0f}",
    ),
    ("signals sent / lost", lambda p: _counts(p, "signals_sent", "lost_signals")),
    ("errors", _errors),
    ("load average at the end", lambda p: str(p["stack"]["load"])),
]


def phase_rows(phases: list[dict[str, Any]]) -> list[str]:
    """The per-phase table."""
    head = "| measure | " + " | ".join(f"{p['rate']:g}/s" for p in phases) + " |"
    lines = [head, "|---|" + "---|" * len(phases)]
    for label, value in PHASE_ROWS:
        lines.append(f"| {label} | " + " | ".join(value(p) for p in phases) + " |")
    return lines


def relay_rows(relay: dict[str, dict[str, float]], windows: int) -> list[str]:
    """Tolk's single-instance relay beside PeerJS, from the same run (medians of `windows`)."""
    if not relay:
        return []
    t, p = relay["tolk"], relay["peerjs"]
    head = f"| relay, one instance (medians of {windows} windows each) | Tolk | PeerJS | ratio |"
    lines = [head, "|---|---|---|---|"]
    for label, key, fmt in (
        ("relayed messages/s", "rate", "{:,.0f}"),
        ("round trip p50 (ms)", "p50_ms", "{:.2f}"),
        ("round trip p99 (ms)", "p99_ms", "{:.2f}"),
        ("server CPU per message (µs)", "cpu_us_per_msg", "{:.1f}"),
        ("RSS per idle socket (KB)", "rss_kb_per_idle_socket", "{:.1f}"),
    ):
        lines.append(
            f"| {label} | {fmt.format(t[key])} | {fmt.format(p[key])} | {t[key] / p[key]:.2f}x |"
        )
    if paired := relay.get("paired"):
        lines += ["", signaling_relay.paired_cpu_line(paired)]
    return lines


def report(
    args: argparse.Namespace,
    scale: dict[str, Any],
    relay: dict[str, dict[str, float]],
    load_before: str,
    limit: int,
    pace: tuple[float, float],
) -> str:
    """The run as a Markdown section."""
    sockets = scale["sockets"]
    grown = [c - s for s, c in zip(scale["rss_started_mb"], scale["rss_connected_mb"], strict=True)]
    per_socket = [g * 1024 / n if n else 0.0 for g, n in zip(grown, sockets, strict=True)]
    later = [
        (c - h) * 1024 / (n - m) if n > m else 0.0
        for h, c, m, n in zip(
            scale["rss_half_mb"],
            scale["rss_connected_mb"],
            scale["sockets_half"],
            sockets,
            strict=True,
        )
    ]
    now = datetime.now(UTC)
    people = f"{args.interpreters:,} interpreters, {args.counsellors:,} counsellors"
    rates = ",".join(f"{r:g}" for r in args.rates)
    lines = [
        f"## {now:%Y-%m-%d %H:%M} UTC: {people}",
        "",
        f"`python -m bench.scale --interpreters {args.interpreters}"
        f" --counsellors {args.counsellors} --rates {rates} --seconds {args.seconds:g}"
        f" --watching {args.watching:g} --languages-interval {args.languages_interval:g}"
        + (
            " --no-relay"
            if args.no_relay
            else f" --relay-runs {args.relay_runs} --relay-rounds {args.relay_rounds}"
        )
        + "`"
        f" on {os.cpu_count()} cores (TOLK_LANGUAGES_INTERVAL_S={args.languages_interval:g});"
        f" load average {load_before} before the run; open-file limit {limit}; the"
        f" machine's pace (bench/pace.py) {pace[0]:.2f} s for a Python loop, {pace[1]:.1f} µs"
        " for a loopback round trip.",
        "",
        f"Sockets per instance {' / '.join(str(n) for n in sockets)}, opened through nginx in"
        f" {scale['connect_s']:.0f} s. RSS per instance after start"
        f" {_per_instance(scale['rss_started_mb'], '{:.0f}')} MB, with the sockets open"
        f" {_per_instance(scale['rss_connected_mb'], '{:.0f}')} MB:"
        f" {_per_instance(per_socket, '{:.1f}')} KB per idle socket; the second half of the"
        f" counsellors' sockets added {_per_instance(later, '{:.1f}')} KB each. Sockets"
        f" watching the language figures once all were open:"
        f" {' / '.join(str(n) for n in scale.get('watching', []))}.",
        "",
        *phase_rows(scale["phases"]),
        "",
        *relay_rows(relay, args.relay_runs * args.relay_rounds),
        "",
    ]
    return "\n".join(lines)


async def run_scale(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Seed, start the stack, run the people through every phase, stop the stack."""
    stack = Stack(tmp, args.interpreters + args.counsellors, args.languages_interval)
    await stack.create_database()
    try:
        started = time.perf_counter()
        # Interpreters start offline: each goes available when its socket opens.
        roster = await seed(
            stack.url,
            args.interpreters,
            random.Random(args.interpreters),
            counsellors=args.counsellors,
            status=Presence.OFFLINE,
        )
        print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
        await stack.start()
        assert stack.nginx is not None
        setup = {
            "seed": 1,
            "port": stack.nginx.https_port,
            "cafile": str(stack.nginx.cert),
            "dsn": stack.dsn,
            "interpreters": roster.interpreters,
            "counsellors": roster.counsellors,
            "languages": LANGUAGES,
            "rates": args.rates,
            "seconds": args.seconds,
            "drain_s": args.drain,
            "hold": args.hold,
            "accept_delay": args.accept_delay,
            "decline": args.decline,
            "ring_out": args.ring_out,
            "cancel": args.cancel,
            "presence_rate": args.presence_rate,
            "reconnect_rate": args.reconnect_rate,
            "connect_at_once": args.connect_at_once,
            "watching": args.watching,
        }
        setup_file = tmp / "setup.json"
        setup_file.write_text(json.dumps(setup))
        return await drive(stack, setup_file)
    finally:
        await stack.stop()


async def run_relay(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """`bench.signaling_relay` in this run: one instance's relay beside PeerJS's, the two
    servers up at once, `--relay-runs` times with `--relay-rounds` windows each (medians:
    one window swings by 10-40 %)."""
    relay_args = argparse.Namespace(
        pairs=args.relay_pairs,
        runs=args.relay_runs,
        rounds=args.relay_rounds,
        seconds=args.relay_seconds,
        warmup=2.0,
        idle=args.relay_idle,
        before=None,
        mode="pairs",
    )
    results = await signaling_relay.measure(relay_args)
    relay = {
        kind: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for kind, runs in results.items()
    }
    relay["paired"] = signaling_relay.paired_cpu(results)
    return relay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interpreters", type=int, default=5000)
    parser.add_argument("--counsellors", type=int, default=10000)
    parser.add_argument(
        "--rates", type=lambda s: [float(r) for r in s.split(",")], default=[2.0, 6.0]
    )
    parser.add_argument("--seconds", type=float, default=120, help="of requests per phase")
    parser.add_argument("--drain", type=float, default=120, help="at most, after each phase")
    parser.add_argument("--hold", type=_pair, default=(20.0, 40.0), help="call length, s")
    parser.add_argument("--accept-delay", type=_pair, default=(2.0, 5.0))
    parser.add_argument("--decline", type=float, default=0.08, help="share of offers")
    parser.add_argument("--ring-out", type=float, default=0.04, help="share of offers")
    parser.add_argument("--cancel", type=float, default=0.05, help="share of requests")
    parser.add_argument("--presence-rate", type=float, default=3.0, help="changes per second")
    parser.add_argument("--reconnect-rate", type=float, default=1.0, help="per second")
    parser.add_argument("--connect-at-once", type=int, default=100)
    parser.add_argument(
        "--watching", type=float, default=0.1, help="share of counsellors' pages in front, idle"
    )
    parser.add_argument(
        "--languages-interval", type=float, default=1.0, help="TOLK_LANGUAGES_INTERVAL_S"
    )
    parser.add_argument("--relay-pairs", type=int, default=100)
    parser.add_argument("--relay-seconds", type=float, default=10)
    parser.add_argument("--relay-idle", type=int, default=5000)
    parser.add_argument(
        "--relay-runs", type=int, default=3, help="of each relay, reported as medians"
    )
    parser.add_argument("--relay-rounds", type=int, default=1, help="relay windows per run")
    parser.add_argument("--no-relay", action="store_true", help="skip the relay comparison")
    parser.add_argument("--write", action="store_true", help="record in bench/results/scale.md")
    args = parser.parse_args()
    if not args.no_relay and not signaling_relay.PEERJS_BIN.exists():
        # Said before the run, not after its minutes: the relay comparison needs PeerJS.
        raise SystemExit("PeerJS is missing: (cd bench/peerjs && npm ci), or --no-relay")
    limit = raise_descriptor_limit(2 * (args.interpreters + args.counsellors) + 4096)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    load_before = load_average()
    pace = (machine_pace(), kernel_pace())
    with tempfile.TemporaryDirectory(prefix="tolk-scale-") as tmp:
        scale = asyncio.run(run_scale(args, Path(tmp)))
    # Kept at once, beside the run's log: the relay comparison after it takes minutes more.
    print("SCALE " + json.dumps(scale), flush=True)
    relay = {} if args.no_relay else asyncio.run(run_relay(args))
    text = report(args, scale, relay, load_before, limit, pace)
    print(text)
    if args.write:
        title = "# Regional scale: two instances on PostgreSQL and Redis behind nginx"
        rest = RESULTS.read_text().partition("\n")[2] if RESULTS.exists() else ""
        RESULTS.write_text(f"{title}\n\n{text}\n{rest.lstrip(chr(10))}")
    errors = sum(sum(p["errors"].values()) for p in scale["phases"])
    lost = sum(p["counts"].get("lost_signals", 0) for p in scale["phases"])
    raise SystemExit(1 if errors or lost else 0)


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(v) for v in text.split(","))
    return low, high


if __name__ == "__main__":
    main()
