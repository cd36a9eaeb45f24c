"""Signalling relay benchmark: Tolk's hub beside the PeerJS server, same load, same run.

N pairs of sockets in N calls ping-pong ~1.5 KB `signal` messages (PeerJS: OFFER
messages between two peer ids): one message in flight per pair, the receiver answering at
once. Measured per server: relayed messages/s, round-trip p50/p99, server CPU per relayed
message, and the RSS each idle socket costs with 5,000 sockets open (they stay open while
the pairs relay, as a server's idle sockets do while it relays). Each server runs in
its own process, the load generator in another; medians of the relay windows go to
bench/results/signaling_relay.md.

    python -m bench.signaling_relay [--pairs 100] [--runs 3] [--rounds 1] [--seconds 10]
        [--idle 5000] [--before DIR] [--mode idle]

A run starts every server at once and opens each one's idle sockets; then, in each of
`--rounds` rounds, the pairs relay through each server in turn for a window of `--seconds`
(the order rotates from round to round). A Tolk window is paired with the PeerJS window of
its round, seconds apart: on a shared machine one window of a server can take 20-40 % more
CPU per message than the next, and many short pairs place the ratio more closely than a
few long ones (its median is given with a 90 % interval).

`--mode idle` measures only the idle sockets' RSS (no relay load, so it can run beside
CPU-sensitive work) and adds its table as a new section at the top of the results.

`--before DIR` also runs the Tolk server from another source tree (say `git archive main`
unpacked in DIR) in the same runs, for a before/after table under the same load.

The load generator speaks the WebSocket protocol itself on asyncio (uvloop), so that it
costs little CPU next to the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.pace import kernel_pace, machine_pace
from bench.procstat import cpu_seconds, rss_bytes
from bench.scale_load import quantile_interval
from bench.wsclient import WsClient, open_client

ROOT = Path(__file__).resolve().parent.parent
PEERJS_BIN = ROOT / "bench" / "peerjs" / "node_modules" / "peer" / "dist" / "bin" / "peerjs.js"
RESULTS = ROOT / "bench" / "results" / "signaling_relay.md"
SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS stream\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" + "a=x-bench:padding\r\n" * 60
)[:1350]


@dataclass
class Pair:
    """Two sockets in one call; `a` starts each round trip, `b` answers."""

    a: WsClient | None = None
    b: WsClient | None = None
    ping: bytes = b""
    pong: bytes = b""
    sent_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class LoadGen:
    """Drives N pairs against one server kind (`tolk` or `peerjs`)."""

    def __init__(self, kind: str, port: int, setup: dict[str, Any]) -> None:
        self.kind = kind
        self.port = port
        self.setup = setup
        self.pairs: list[Pair] = []
        self.running = False
        self.messages = 0
        self.rtts: list[float] = []

    def _on_a(self, pair: Pair) -> Any:
        def on_text(payload: bytes) -> None:
            if not self._is_signal(payload):
                self._control(pair, payload, "a")
                return
            now = time.perf_counter()
            if self.running:
                self.messages += 1
                self.rtts.append(now - pair.sent_at)
            pair.sent_at = now
            assert pair.a is not None
            pair.a.send(pair.ping)

        return on_text

    def _on_b(self, pair: Pair) -> Any:
        def on_text(payload: bytes) -> None:
            if not self._is_signal(payload):
                self._control(pair, payload, "b")
                return
            if self.running:
                self.messages += 1
            assert pair.b is not None
            pair.b.send(pair.pong)

        return on_text

    def _is_signal(self, payload: bytes) -> bool:
        head = payload[:24]
        if self.kind == "tolk":
            return head.startswith(b'{"type":"signal"')
        return b'"OFFER"' in head or b'"ANSWER"' in head

    def _control(self, pair: Pair, payload: bytes, side: str) -> None:
        kind = orjson.loads(payload).get("type")
        if kind == "error":
            print("server error:", payload[:200], file=sys.stderr)
        # Tolk: the counsellor (a) hears `peer` once the interpreter (b) has joined.
        if kind == "peer" or (kind == "OPEN" and side == "b"):
            pair.ready.set()

    async def connect_pairs(self) -> None:
        for spec in self.setup["pairs"]:
            pair = Pair()
            if self.kind == "tolk":
                call_id = spec["call_id"]
                pair.ping = orjson.dumps(
                    {
                        "type": "signal",
                        "call_id": call_id,
                        "data": {"description": {"type": "offer", "sdp": SDP}},
                    }
                )
                pair.pong = orjson.dumps(
                    {
                        "type": "signal",
                        "call_id": call_id,
                        "data": {"description": {"type": "answer", "sdp": SDP}},
                    }
                )
                join = orjson.dumps({"type": "call.join", "call_id": call_id})
                pair.a = await open_client(
                    self.port, "/ws", {"Authorization": f"Bearer {spec['a']}"}, self._on_a(pair)
                )
                pair.a.send(join)
                pair.b = await open_client(
                    self.port, "/ws", {"Authorization": f"Bearer {spec['b']}"}, self._on_b(pair)
                )
                pair.b.send(join)
            else:
                a_id, b_id = spec["a"], spec["b"]
                pair.ping = orjson.dumps(
                    {
                        "type": "OFFER",
                        "dst": b_id,
                        "payload": {"sdp": {"type": "offer", "sdp": SDP}, "type": "media"},
                    }
                )
                pair.pong = orjson.dumps(
                    {
                        "type": "ANSWER",
                        "dst": a_id,
                        "payload": {"sdp": {"type": "answer", "sdp": SDP}, "type": "media"},
                    }
                )
                pair.a = await open_client(
                    self.port, f"/peerjs?key=peerjs&id={a_id}&token=t{a_id}", {}, self._on_a(pair)
                )
                pair.b = await open_client(
                    self.port, f"/peerjs?key=peerjs&id={b_id}&token=t{b_id}", {}, self._on_b(pair)
                )
            self.pairs.append(pair)
        await asyncio.wait_for(asyncio.gather(*(p.ready.wait() for p in self.pairs)), 60)

    def start(self) -> None:
        now = time.perf_counter()
        for pair in self.pairs:
            pair.sent_at = now
            assert pair.a is not None
            pair.a.send(pair.ping)

    async def open_idle(self, creds: list[str]) -> list[WsClient]:
        """Open idle sockets with these credentials and wait until each has its greeting."""
        clients: list[WsClient] = []
        greeted = 0
        done = asyncio.Event()
        total = len(creds)

        def on_text(payload: bytes) -> None:
            nonlocal greeted
            if b'"hello"' in payload[:20] or b'"OPEN"' in payload[:20]:
                greeted += 1
                if greeted == total:
                    done.set()

        sem = asyncio.Semaphore(50)

        async def one(cred: str) -> None:
            async with sem:
                if self.kind == "tolk":
                    path, headers = "/ws", {"Authorization": f"Bearer {cred}"}
                else:
                    path, headers = f"/peerjs?key=peerjs&id={cred}&token=t{cred}", {}
                clients.append(await open_client(self.port, path, headers, on_text))

        await asyncio.gather(*(one(c) for c in creds))
        await asyncio.wait_for(done.wait(), 120)
        return clients


async def _loadgen_main(args: argparse.Namespace) -> None:
    setup = json.loads(Path(args.setup).read_text())  # noqa: ASYNC240 (before any load)
    gen = LoadGen(args.kind, args.port, setup)
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    if args.mode == "idle":
        # In two halves: the server's RSS between them separates what the second half's
        # sockets cost from what the first sockets also paid once (pools, caches, arenas).
        creds = setup["idle"]
        clients = await gen.open_idle(creds[: len(creds) // 2])
        say(f"HALF {len(clients)}")
        await stdin.readline()
        clients += await gen.open_idle(creds[len(creds) // 2 :])
        say(f"READY {len(clients)}")
        await stdin.readline()
        for c in clients:
            if c.transport is not None:
                c.transport.close()
        say("DONE")
        return
    await gen.connect_pairs()
    gen.start()
    await asyncio.sleep(args.warmup)
    gen.messages = 0
    gen.rtts.clear()
    gen.running = True
    say("START")
    started = time.perf_counter()
    await asyncio.sleep(args.seconds)
    gen.running = False
    elapsed = time.perf_counter() - started
    rtts = sorted(gen.rtts)
    result = {
        "messages": gen.messages,
        "seconds": elapsed,
        "rate": gen.messages / elapsed,
        "p50_ms": rtts[len(rtts) // 2] * 1000 if rtts else None,
        "p99_ms": rtts[int(len(rtts) * 0.99)] * 1000 if rtts else None,
    }
    say("RESULT " + json.dumps(result))


# --- the orchestrator --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed_tolk(db_url: str, pairs: int, idle: int) -> dict[str, Any]:
    """Users, tokens and calls for the run, written through Tolk's own services."""
    from accounts import service
    from accounts.models import Role
    from accounts.passwords import hash_password_sync
    from calls.models import Call, CallState
    from dispatch.models import InterpretationRequest, RequestState
    from infra.db import Database, make_engine
    from interpreters.models import Interpreter, Presence
    from tolk import schema

    await schema.upgrade(db_url)
    db = Database(make_engine(db_url))
    now = datetime.now(UTC)
    pw = hash_password_sync("bench-password-1")
    setup: dict[str, Any] = {"pairs": [], "idle": []}
    try:
        async with db.write() as s:
            org = await service.create_organization(s, "Bench", "B", now)

            async def user(name: str, role: Role) -> tuple[str, str]:
                u = await service.create_user(
                    s,
                    username=name,
                    password_hash=pw,
                    display_name=name,
                    role=role,
                    organization_id=org.id,
                    now=now,
                )
                return u.id, (await service.issue_api_token(s, u.id, "bench", now)).token

            for i in range(pairs):
                c_id, c_token = await user(f"c{i}", Role.COUNSELLOR)
                i_id, i_token = await user(f"i{i}", Role.INTERPRETER)
                s.add(
                    Interpreter(
                        user_id=i_id, status=Presence.BUSY, status_changed_at=now, idle_since=now
                    )
                )
                req = InterpretationRequest(
                    counsellor_id=c_id,
                    organization_id=org.id,
                    language="uk",
                    state=RequestState.ACCEPTED,
                    created_at=now,
                    updated_at=now,
                    expires_at=now + timedelta(hours=1),
                )
                s.add(req)
                await s.flush()
                call = Call(
                    request_id=req.id,
                    counsellor_id=c_id,
                    interpreter_id=i_id,
                    organization_id=org.id,
                    language="uk",
                    state=CallState.CONNECTING,
                    created_at=now,
                )
                s.add(call)
                await s.flush()
                setup["pairs"].append({"call_id": call.id, "a": c_token, "b": i_token})
            for i in range(idle):
                setup["idle"].append((await user(f"idle{i}", Role.COUNSELLOR))[1])
    finally:
        await db.close()
    return setup


class Process:
    """A server under test."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)

    async def wait_listening(self) -> None:
        deadline = time.monotonic() + 120  # a machine under load starts slowly
        while True:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", self.port)
                w.close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("server did not start") from None
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


async def start_server(
    kind: str, tmp: Path, db_url: str, idle: int, before: Path | None = None
) -> Process:
    port = free_port()
    if kind != "peerjs":
        source = {"PYTHONPATH": str(before)} if kind == "before" and before else {}
        env = {
            **os.environ,
            **source,
            "TOLK_DATABASE_URL": db_url,
            "TOLK_PORT": str(port),
            "TOLK_SECRET_KEY": "bench-secret",
            "TOLK_LOG_LEVEL": "warning",
            "TOLK_LOG_FORMAT": "json",
            # Measure the relay, not the per-socket flood limit (its check still runs).
            "TOLK_WS_MESSAGES_PER_SECOND": "1000000",
            "TOLK_WS_BURST": "1000000",
            "TOLK_CALL_CONNECT_TIMEOUT_S": "36000",
        }
        argv = [str(Path(sys.executable).with_name("tolk")), "serve"]
    else:
        env = dict(os.environ)
        argv = [
            shutil.which("node") or "node",
            str(PEERJS_BIN),
            "--port",
            str(port),
            "--path",
            "/",
            "--concurrent_limit",
            str(idle + 1000),
        ]
    server = Process(argv, env, port, tmp / f"{kind}.log")
    await server.wait_listening()
    return server


async def run_loadgen(
    kind: str,
    port: int,
    setup_file: Path,
    mode: str,
    args: argparse.Namespace,
    pid: int,
    while_open: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Run a load generator to its end; in `idle` mode, `while_open` runs once all the idle
    sockets are open and measured, before they close."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.signaling_relay",
        "--loadgen",
        kind,
        "--port",
        str(port),
        "--setup",
        str(setup_file),
        "--mode",
        mode,
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    out: dict[str, Any] = {}
    try:
        async with asyncio.timeout(600):
            while True:
                line = (await proc.stdout.readline()).decode().strip()
                if not line:
                    raise RuntimeError(f"load generator for {kind} stopped")
                if line.startswith(("HALF", "READY")):
                    # HALF: half of the idle sockets are open; READY: all of them.
                    rss_key, count_key = (
                        ("rss_half", "half")
                        if line.startswith("HALF")
                        else ("rss_after", "sockets")
                    )
                    await asyncio.sleep(3)  # let the server settle before reading its RSS
                    out[rss_key] = rss_bytes(pid)
                    out[count_key] = int(line.split()[1])
                    if line.startswith("READY") and while_open is not None:
                        await while_open()
                    proc.stdin.write(b"go\n")
                    await proc.stdin.drain()
                elif line == "DONE":
                    break
                elif line == "START":
                    out["cpu_start"] = cpu_seconds(pid)
                elif line.startswith("RESULT"):
                    out["cpu_end"] = cpu_seconds(pid)
                    out.update(json.loads(line.split(" ", 1)[1]))
                    break
            await proc.wait()
    finally:
        if proc.returncode is None:  # a failed run (its relay, say) leaves no sockets open
            proc.kill()
            await proc.wait()
    return out


async def run_relay(
    protocol: str,
    port: int,
    setup_file: Path,
    args: argparse.Namespace,
    pid: int,
    profile: str | None,
) -> dict[str, Any]:
    """The pairs' relay run, sampled by py-spy into the file `profile` if given."""
    spy = None
    if profile:
        spy = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                profile,
                "-d",
                str(int(args.seconds + args.warmup + 5)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        return await run_loadgen(protocol, port, setup_file, "pairs", args, pid)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT, not SIGTERM
            spy.wait(timeout=60)


async def one_run(
    kind: str, tmp: Path, db_url: str, setup_file: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """One server of one kind: its idle sockets, then one relay window (bench.compare)."""
    return (await run_together([kind], tmp, {kind: db_url}, {kind: setup_file}, args, 1))[kind][0]


async def run_together(
    kinds: list[str],
    tmp: Path,
    db_urls: dict[str, str],
    setup_files: dict[str, Path],
    args: argparse.Namespace,
    rounds: int,
) -> dict[str, list[dict[str, Any]]]:
    """The servers of all `kinds` up at once, each with its idle sockets open (and measured);
    then `rounds` rounds of relay windows, one per server, in an order that rotates from
    round to round, so that a window of each server falls within seconds of the others'.
    Each window's figures carry its server's idle-socket RSS."""
    servers: dict[str, Process] = {}
    idle: dict[str, dict[str, float]] = {}
    windows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    # BENCH_PYSPY=out.txt: sample the Tolk server (this tree's) during its relay windows.
    profile = os.environ.get("BENCH_PYSPY")

    async def relay_rounds() -> None:
        if args.mode == "idle":
            return
        for n in range(rounds):
            shift = n % len(kinds)
            for kind in kinds[shift:] + kinds[:shift]:
                pid = servers[kind].proc.pid
                relay = await run_relay(
                    _protocol(kind),
                    servers[kind].port,
                    setup_files[kind],
                    args,
                    pid,
                    profile if kind == "tolk" else None,
                )
                windows[kind].append(_relay_figures(relay))

    async def open_idle(at: int) -> None:
        """Open the idle sockets of kinds[at], and, while they are open, those of the next
        kinds, then the relay rounds."""
        if at == len(kinds):
            await relay_rounds()
            return
        kind = kinds[at]
        pid = servers[kind].proc.pid
        await asyncio.sleep(1)
        rss_before = rss_bytes(pid)
        opened = await run_loadgen(
            _protocol(kind),
            servers[kind].port,
            setup_files[kind],
            "idle",
            args,
            pid,
            lambda: open_idle(at + 1),
        )
        second_half = opened["sockets"] - opened["half"]
        idle[kind] = {
            "rss_kb_per_idle_socket": (opened["rss_after"] - rss_before) / opened["sockets"] / 1024,
            "rss_kb_per_more_socket": (opened["rss_after"] - opened["rss_half"])
            / second_half
            / 1024,
        }

    try:
        for kind in kinds:
            servers[kind] = await start_server(kind, tmp, db_urls[kind], args.idle, args.before)
        await open_idle(0)
    finally:
        for server in servers.values():
            server.stop()
    if args.mode == "idle":
        return {kind: [idle[kind]] for kind in kinds}
    return {kind: [{**window, **idle[kind]} for window in windows[kind]] for kind in kinds}


def _protocol(kind: str) -> str:
    return "peerjs" if kind == "peerjs" else "tolk"


def _relay_figures(relay: dict[str, Any]) -> dict[str, Any]:
    """A relay window's rate, round trips and the server's CPU per relayed message."""
    user = relay["cpu_end"][0] - relay["cpu_start"][0]
    system = relay["cpu_end"][1] - relay["cpu_start"][1]
    return {
        "rate": relay["rate"],
        "p50_ms": relay["p50_ms"],
        "p99_ms": relay["p99_ms"],
        "cpu_us_per_msg": (user + system) / relay["messages"] * 1e6,
        "cpu_user_us_per_msg": user / relay["messages"] * 1e6,
        "cpu_sys_us_per_msg": system / relay["messages"] * 1e6,
    }


async def orchestrate(args: argparse.Namespace) -> None:
    pace = (machine_pace(), kernel_pace())
    write_results(await measure(args), args, pace)


async def measure(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every run of every server kind (PeerJS, Tolk, and the --before tree if given)."""
    if not PEERJS_BIN.exists():
        raise SystemExit("PeerJS is missing: (cd bench/peerjs && npm ci)")
    with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp_name:
        tmp = Path(tmp_name)
        db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        tolk_setup = await seed_tolk(db_url, args.pairs, args.idle)
        peer_setup = {
            "pairs": [{"a": f"a{i}", "b": f"b{i}"} for i in range(args.pairs)],
            "idle": [f"idle{i}" for i in range(args.idle)],
        }
        files = {"tolk": tmp / "tolk.json", "peerjs": tmp / "peerjs.json"}
        files["tolk"].write_text(json.dumps(tolk_setup))
        files["peerjs"].write_text(json.dumps(peer_setup))
        files["before"] = files["tolk"]
        kinds = ["peerjs", "before", "tolk"] if args.before else ["peerjs", "tolk"]
        # Each Tolk server its own copy of the seeded database, as they run at once.
        db_urls = {"peerjs": "", "tolk": db_url}
        if args.before:
            shutil.copy(tmp / "bench.db", tmp / "before.db")
            db_urls["before"] = f"sqlite+aiosqlite:///{tmp}/before.db"
        results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        for run in range(args.runs):
            windows = await run_together(kinds, tmp, db_urls, files, args, args.rounds)
            for kind in kinds:
                results[kind] += windows[kind]
                for r in windows[kind]:
                    print(
                        f"run {run + 1} {kind}: "
                        + json.dumps({k: round(v, 2) for k, v in r.items()}),
                        flush=True,
                    )
    return results


def paired_cpu(results: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """CPU per message Tolk / PeerJS window by window (each Tolk window against the PeerJS
    window of its round, seconds apart, so that the machine's swings weigh on both sides):
    median, the 90 % interval of the median, and range."""
    ratios = sorted(
        t["cpu_us_per_msg"] / p["cpu_us_per_msg"]
        for t, p in zip(results["tolk"], results["peerjs"], strict=True)
    )
    low, high = quantile_interval(ratios, 0.5)
    return {
        "median": statistics.median(ratios),
        "interval_low": math.nan if low is None else low,
        "interval_high": math.nan if high is None else high,
        "low": ratios[0],
        "high": ratios[-1],
        "pairs": len(ratios),
    }


def paired_cpu_line(paired: dict[str, float]) -> str:
    """`paired_cpu` as a sentence of the results."""
    low, high = paired["interval_low"], paired["interval_high"]
    interval = (
        "too few pairs for a 90 % interval"
        if math.isnan(low) or math.isnan(high)
        else f"90 % interval {low:.2f}x-{high:.2f}x"
    )
    return (
        "Server CPU per message paired window by window (Tolk / the PeerJS window of the same"
        f" round), {paired['pairs']:.0f} pairs: median {paired['median']:.2f}x ({interval}),"
        f" windows {paired['low']:.2f}x-{paired['high']:.2f}x."
    )


def write_results(
    results: dict[str, list[dict[str, Any]]],
    args: argparse.Namespace,
    pace: tuple[float, float],
) -> None:
    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    idle_only = args.mode == "idle"
    rows = [
        ("relayed messages/s", "rate", "{:,.0f}"),
        ("round trip p50 (ms)", "p50_ms", "{:.2f}"),
        ("round trip p99 (ms)", "p99_ms", "{:.2f}"),
        ("server CPU per message (µs)", "cpu_us_per_msg", "{:.1f}"),
        ("RSS per idle socket (KB)", "rss_kb_per_idle_socket", "{:.1f}"),
        ("  second half of the sockets only (KB)", "rss_kb_per_more_socket", "{:.1f}"),
        ("  of it user CPU (µs)", "cpu_user_us_per_msg", "{:.1f}"),
        ("  of it system CPU (µs)", "cpu_sys_us_per_msg", "{:.1f}"),
    ]
    if idle_only:
        rows = [row for row in rows if row[1].startswith("rss_")]
    before = "before" in results
    title = "# Signalling relay: Tolk's hub beside PeerJS"
    command = (
        f"--runs {args.runs} --idle {args.idle} --mode idle"
        if idle_only
        else f"--pairs {args.pairs} --runs {args.runs} --rounds {args.rounds}"
        f" --seconds {args.seconds} --idle {args.idle}"
    )
    load = (
        f"RSS per socket with {args.idle} authenticated idle sockets open (no relay load),"
        " and what the second half of them added per socket (the first half also pays the"
        " one-off growth: pools, caches, allocator arenas)."
        if idle_only
        else f"{args.pairs} pairs ping-pong ~1.5 KB signals (one in flight per pair) in windows"
        f" of {args.seconds} s, each after a {args.warmup} s warm-up, {args.rounds} per server"
        " per run (all servers up at once, their order rotating from round to round); idle"
        f" RSS with {args.idle} sockets open."
    )
    kind_of_run = "Idle sockets" if idle_only else "Relay and idle sockets"
    lines = [
        f"## {kind_of_run}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Recorded {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.signaling_relay "
        + command
        + (" --before DIR" if before else "")
        + "`"
        f" on {os.cpu_count()} cores (shared with other work); the machine's pace"
        f" (bench/pace.py) {pace[0]:.2f} s for a Python loop, {pace[1]:.1f} µs for a loopback"
        " round trip, before the run.",
        "",
        load
        + " Medians of the windows; ratio = Tolk / PeerJS"
        + (
            f"; Tolk before = the server from `{args.before}` (--before), in the same runs."
            if before
            else "."
        ),
        "",
        "| measure | Tolk | PeerJS | ratio |" + (" Tolk before | ratio before |" if before else ""),
        "|---|---|---|---|" + ("---|---|" if before else ""),
    ]
    for label, key, fmt in rows:
        t, p = med("tolk", key), med("peerjs", key)
        line = f"| {label} | {fmt.format(t)} | {fmt.format(p)} | {t / p:.2f}x |"
        if before:
            b = med("before", key)
            line += f" {fmt.format(b)} | {b / p:.2f}x |"
        lines.append(line)
    if not idle_only:
        lines += ["", paired_cpu_line(paired_cpu(results))]
    lines += ["", "Every window:", "", "```"]
    for kind in results:
        for r in results[kind]:
            lines.append(f"{kind:7} " + " ".join(f"{k}={v:.2f}" for k, v in r.items()))
    lines += ["```", ""]
    section = "\n".join(lines)
    print(section)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists():
        # A new section under the title, above the earlier recordings it leaves in place.
        head, _, rest = RESULTS.read_text().partition("\n")
        RESULTS.write_text(f"{head}\n\n{section}\n{rest.lstrip(chr(10))}")
    else:
        RESULTS.write_text(f"{title}\n\n{section}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="relay windows per server per run")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--before", type=Path, help="another Tolk source tree to run too")
    parser.add_argument("--loadgen", choices=["tolk", "peerjs"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--setup")
    parser.add_argument(
        "--mode", choices=["idle", "pairs"], help="idle: only the idle sockets' RSS"
    )
    args = parser.parse_args()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    if args.loadgen:
        args.kind = args.loadgen
        asyncio.run(_loadgen_main(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
