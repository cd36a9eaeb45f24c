"""An instance's memory: RSS of `tolk serve` just after start, and after ten interpreters
logged in with their passwords at once, opened a socket, went available and left.

    python -m bench.instance_memory [--runs 3] [--before DIR]

SQLite with the demo roster; the server in its own process, the interpreters in this one.
`--before DIR` runs the server from another source tree too (say `git archive` of an older
commit unpacked in DIR), alternating with this one. Prints a Markdown table of the
medians; the figures are recorded by hand in bench/results/scale.md ("Memory").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

from bench.procstat import rss_bytes
from tests.processes import free_port
from tolk.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
INTERPRETERS = [
    "olena",
    "dmytro",
    "layla",
    "omar",
    "farid",
    "shirin",
    "elif",
    "rojda",
    "tesfay",
    "ioana",
]


async def come_and_go(base: str, username: str) -> None:
    """Log in, open the socket, go available, wait for the news of it, leave."""
    jar = aiohttp.CookieJar(unsafe=True)  # the cookie of an address, not a host name
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        body = {"username": username, "password": DEMO_PASSWORD}
        async with http.post(base + "/api/session", json=body) as resp:
            resp.raise_for_status()
        async with http.ws_connect(base + "/ws") as ws:
            await ws.send_json({"type": "presence", "status": "available"})
            while (await ws.receive_json(timeout=30))["type"] != "presence.updated":
                pass


async def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("tolk serve exited at start")
            try:
                async with http.get(base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("tolk serve did not come up")


async def one_run(source: Path | None) -> tuple[float, float]:
    """RSS in MB after start and after the ten came and went."""
    with tempfile.TemporaryDirectory(prefix="tolk-memory-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/tolk.db",
            "TOLK_PORT": str(port),
            "TOLK_SECRET_KEY": "bench-memory-" + "x" * 20,
            "TOLK_LOG_LEVEL": "warning",
            "TOLK_LOG_FORMAT": "json",
        }
        # `python -m` looks in its working folder first: the tree is where it runs.
        tree = source or ROOT
        tolk = [sys.executable, "-m", "tolk"]
        # Before anything is measured: blocking the loop here costs nothing.
        subprocess.run([*tolk, "seed-demo"], env=env, cwd=tree, check=True, capture_output=True)  # noqa: ASYNC221
        proc = subprocess.Popen([*tolk, "serve"], env=env, cwd=tree, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(base, proc)
            await asyncio.sleep(2)  # the first sweeps and jobs
            started = rss_bytes(proc.pid) / 2**20
            await asyncio.gather(*(come_and_go(base, name) for name in INTERPRETERS))
            await asyncio.sleep(2)
            return started, rss_bytes(proc.pid) / 2**20
        finally:
            proc.terminate()
            proc.wait(timeout=20)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another Tolk source tree to run too")
    args = parser.parse_args()
    trees: dict[str, Path | None] = {"this tree": None}
    if args.before:
        trees = {"before": args.before, **trees}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for _ in range(args.runs):
        for name, source in trees.items():
            results[name].append(await one_run(source))
            print(name, *(f"{v:.0f}" for v in results[name][-1]), file=sys.stderr)
    print("| tree | RSS after start (MB) | after ten interpreters came and went (MB) |")
    print("|---|---|---|")
    for name, runs in results.items():
        start = statistics.median(r[0] for r in runs)
        after = statistics.median(r[1] for r in runs)
        print(f"| {name} | {start:.0f} | {after:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
