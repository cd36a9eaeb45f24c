"""Redis blinking under two instances: how long an accept takes while Redis is away, and
how soon after Redis is back the counsellor's open socket hears of the call.

Two `tolk serve` processes share a fresh PostgreSQL database and a redis-server of this
benchmark's own (port of its own, no persistence); the counsellor's socket is on one
instance, the interpreter's on the other. Each round: an offer reaches the interpreter,
Redis is stopped (SIGTERM, started again later) or paused (SIGSTOP/SIGCONT), the
interpreter accepts, and after `--outage` seconds Redis is back. Results:
bench/results/outage_recovery.md.

    python -m bench.outage_recovery --rounds 5 --outage 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from signaling.peers.client import TolkClient
from tests.own_redis import OwnRedis
from tests.processes import free_port
from tolk.demo import DEMO_PASSWORD

POSTGRES = os.environ.get("TOLK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _serve(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (workdir / f"serve-{port}.log").open("ab")
    proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the server runs on its own
        [sys.executable, "-m", "tolk", "serve"],
        env={**env, "TOLK_PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return proc, url
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)


async def _client(url: str, username: str) -> tuple[TolkClient, asyncio.Task[None]]:
    client = TolkClient(url, username, DEMO_PASSWORD, backoff_initial_s=0.05, backoff_max_s=0.5)
    await client.login()
    await client.connect()
    return client, asyncio.get_running_loop().create_task(client.run_socket())


def _names_the_call(call_id: str) -> Any:
    def match(message: dict[str, Any]) -> bool:
        call = message.get("call") or {}
        request = message.get("request") or {}
        return (call.get("id") == call_id and call.get("state") != "ended") or request.get(
            "call_id"
        ) == call_id

    return match


async def _available(interpreter: TolkClient) -> None:
    while True:
        me = await interpreter.request("GET", "/api/interpreters/me")
        if me["interpreter"]["status"] == "available":
            return
        await asyncio.sleep(0.1)


async def _round(
    redis: OwnRedis, counsellor: TolkClient, interpreter: TolkClient, how: str, outage_s: float
) -> tuple[float, float]:
    offer = asyncio.ensure_future(interpreter.wait_for("offer", 15))
    await counsellor.request("POST", "/api/requests", {"language": "uk"})
    offer_id = (await offer)["offer"]["id"]
    if how == "pause":
        redis.pause()
    else:
        redis.stop()
    down_at = time.perf_counter()
    call = await interpreter.request("POST", f"/api/offers/{offer_id}/accept")
    accept_s = time.perf_counter() - down_at
    call_id = call["call"]["id"]
    news = asyncio.ensure_future(counsellor.wait_for(_names_the_call(call_id), outage_s + 30))
    await asyncio.sleep(outage_s - (time.perf_counter() - down_at))  # the outage itself
    back_at = time.perf_counter()  # from the moment Redis is started again or resumed
    if how == "pause":
        redis.resume()
    else:
        redis.start()
    await news
    heard_s = time.perf_counter() - back_at
    await counsellor.request("POST", f"/api/calls/{call_id}/hangup")
    await _available(interpreter)
    return accept_s, heard_s


async def main(rounds: int, outage_s: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tolk-outage-"))
    database = "tolk_bench_" + secrets.token_hex(6)
    admin = await asyncpg.connect(POSTGRES)
    await admin.execute(f"CREATE DATABASE {database}")
    redis = OwnRedis(workdir)
    redis.start()
    env = {
        **os.environ,
        "TOLK_DATABASE_URL": f"postgresql+asyncpg://{POSTGRES.split('://')[1].rsplit('/', 1)[0]}/"
        + database,
        "TOLK_REDIS_URL": redis.url,
        "TOLK_REDIS_NAMESPACE": "bench-" + secrets.token_hex(4),
        "TOLK_SECRET_KEY": "bench-" + secrets.token_hex(8),
        "TOLK_WRAP_UP_S": "0",
        "TOLK_LOG_FORMAT": "json",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for command in ("migrate", "seed-demo"):
            subprocess.run(  # noqa: ASYNC221 - one-off set-up before the runs
                [sys.executable, "-m", "tolk", command],
                env=env,
                check=True,
                capture_output=True,
            )
        (a, url_a), (b, url_b) = await asyncio.gather(_serve(workdir, env), _serve(workdir, env))
        procs += [a, b]
        counsellor, c_task = await _client(url_a, "berater.jobcenter")
        interpreter, i_task = await _client(url_b, "olena")
        await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
        results: dict[str, list[tuple[float, float]]] = {"stop": [], "pause": []}
        for i in range(rounds):
            for how in ("stop", "pause"):
                accept_s, heard_s = await _round(redis, counsellor, interpreter, how, outage_s)
                results[how].append((accept_s, heard_s))
                print(f"{how} round={i} accept_ms={accept_s * 1000:.1f} heard_s={heard_s:.2f}")
        for how, rows in results.items():
            accepts = [r[0] * 1000 for r in rows]
            heard = [r[1] for r in rows]
            print(
                f"{how}: accept during outage p50 {statistics.median(accepts):.1f} ms "
                f"(max {max(accepts):.1f}); call news after Redis is back "
                f"p50 {statistics.median(heard):.2f} s (max {max(heard):.2f})"
            )
        c_task.cancel()
        i_task.cancel()
        await counsellor.close()
        await interpreter.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        redis.stop()
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds Redis is away")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.outage))
