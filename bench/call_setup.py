"""Call set-up time: from an interpreter's accept to both aiortc peers decoding the other's
video, on loopback, through a real Tolk server (rooms, relay, dispatch); and, in the same
run, a direct aiortc-to-aiortc call as the baseline (what aiortc itself needs).

    python -m bench.call_setup [--runs 10] [--url http://127.0.0.1:8080]

Without --url it starts its own `tolk serve` on a free port with a fresh SQLite database
and the demo roster (wrap-up 0 s, so the interpreter is free again at once). Target:
p50 <= 300 ms through Tolk. Results: bench/results/call_setup.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aioice.ice

from signaling.peers.call import CallPeer
from signaling.peers.client import TolkClient
from signaling.peers.media import FrameSink, PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.negotiation import Negotiator
from tolk.demo import DEMO_PASSWORD
from tolk.logging import configure_logging

PATTERN = TestPattern("bench", 640, 480)
COUNSELLOR = "berater.jobcenter"
INTERPRETER = "olena"
LANGUAGE = "uk"


def tracks() -> list[Any]:
    return [PatternVideoTrack(PATTERN), ToneAudioTrack()]


def loopback_only() -> None:
    # aioice never offers 127.0.0.1 as a host candidate; on loopback it must.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def direct_call() -> float:
    """One aiortc-to-aiortc call without a server: offer -> both decode a video frame."""
    sinks = [FrameSink(), FrameSink()]
    inboxes: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue(), asyncio.Queue()]

    def sender(i: int):
        async def send(data: dict[str, Any]) -> None:
            inboxes[1 - i].put_nowait(data)

        return send

    sides = [
        Negotiator(
            polite=i == 1, ice_servers=[], send=sender(i), tracks=tracks, on_track=sinks[i].add
        )
        for i in range(2)
    ]

    async def pump(i: int) -> None:
        while True:
            await sides[i].handle(await inboxes[i].get())

    pumps = [asyncio.get_running_loop().create_task(pump(i)) for i in range(2)]
    started = time.perf_counter()
    try:
        await sides[0].offer()
        for sink in sinks:
            await sink.wait_for_frames("video", 1, timeout_s=10)
        return max(s.first_frame_at["video"] for s in sinks) - started
    finally:
        for task in pumps:
            task.cancel()
        for side, sink in zip(sides, sinks, strict=True):
            await sink.close()
            await side.close()


async def tolk_call(counsellor: TolkClient, interpreter: TolkClient) -> dict[str, float]:
    """One call through Tolk: request, offer, accept -> both decode the other's video.

    Returns the time from the accept to the end of each phase (`total` is the result)."""
    offer_seen = interpreter.wait_for("offer", timeout_s=10)
    await counsellor.request("POST", "/api/requests", {"language": LANGUAGE})
    offer = (await offer_seen)["offer"]

    def names_a_call(m: dict[str, Any]) -> bool:
        if m.get("type") == "call.updated":
            return True
        return m.get("type") == "request.updated" and bool((m.get("request") or {}).get("call_id"))

    call_news = asyncio.ensure_future(counsellor.wait_for(names_a_call, timeout_s=10))
    started = time.perf_counter()
    call = (await interpreter.request("POST", f"/api/offers/{offer['id']}/accept"))["call"]
    accepted = time.perf_counter()
    their = CallPeer(interpreter, call["id"], tracks)
    news = await call_news
    told = time.perf_counter()
    call_id = (news.get("call") or {}).get("id") or news["request"]["call_id"]
    mine = CallPeer(counsellor, call_id, tracks)
    try:
        await asyncio.gather(their.join(), mine.join())
        joined = time.perf_counter()
        await mine.sink.wait_for_frames("video", 1, timeout_s=10)
        await their.sink.wait_for_frames("video", 1, timeout_s=10)
        peers = (mine, their)
        return {
            "accept answered": accepted - started,
            "counsellor told": told - started,
            "both joined (offer sent)": joined - started,
            "media connected": max(p.connected_at or 0.0 for p in peers) - started,
            "total": max(p.sink.first_frame_at["video"] for p in peers) - started,
        }
    finally:
        await mine.hangup()
        await their.close()
        with suppress(Exception):
            await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def own_server():
    """A `tolk serve` of our own: fresh SQLite, the demo roster, wrap-up 0 s."""
    with tempfile.TemporaryDirectory(prefix="tolk-bench-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/tolk.db",
            "TOLK_PORT": str(port),
            "TOLK_WRAP_UP_S": "0",
            "TOLK_LOG_LEVEL": "warning",
        }
        tolk = [sys.executable, "-m", "tolk"]
        # Blocking on purpose: nothing else runs yet, and the bench needs the roster first.
        subprocess.run([*tolk, "seed-demo"], env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: ASYNC221
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([*tolk, "serve"], env=env, stdout=out, stderr=out)  # noqa: ASYNC220
            try:
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 30
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port), 0.2):
                            break
                    except OSError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError(log.read_text()[-2000:]) from None
                        await asyncio.sleep(0.1)
                yield url
            finally:
                proc.terminate()
                proc.wait(timeout=10)


async def measure_tolk(url: str, runs: int) -> list[dict[str, float]]:
    admin = TolkClient(url, "admin", DEMO_PASSWORD)
    counsellor = TolkClient(url, COUNSELLOR, DEMO_PASSWORD)
    interpreter = TolkClient(url, INTERPRETER, DEMO_PASSWORD)
    tasks: list[asyncio.Task[None]] = []
    try:
        await admin.login()
        await interpreter.login()
        # The roster as the demo has it (the seed may already have made the profile).
        with suppress(Exception):
            await admin.request(
                "PUT", f"/api/admin/interpreters/{interpreter.user_id}", {"languages": ["uk"]}
            )
        await counsellor.login()
        for client in (counsellor, interpreter):
            await client.connect()
            tasks.append(asyncio.get_running_loop().create_task(client.run_socket()))
        await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
        await tolk_call(counsellor, interpreter)  # warm-up: imports, codec set-up
        return [await tolk_call(counsellor, interpreter) for _ in range(runs)]
    finally:
        for task in tasks:
            task.cancel()
        for client in (admin, counsellor, interpreter):
            await client.close()


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    return f"| {name} | {len(ms)} | {p50:.0f} | {p90:.0f} | {ms[0]:.0f} | {ms[-1]:.0f} |"


async def main(runs: int, url: str | None) -> None:
    configure_logging("console", "warning")  # the peers' info events would drown the table
    loopback_only()
    await direct_call()  # warm-up
    direct = [await direct_call() for _ in range(runs)]
    print("| path | runs | p50 ms | p90 ms | min ms | max ms |")
    print("|---|---|---|---|---|---|")
    print(summary("direct aiortc <-> aiortc (baseline)", direct), flush=True)
    try:
        if url:
            calls = await measure_tolk(url, runs)
        else:
            async with own_server() as own:
                calls = await measure_tolk(own, runs)
        print(summary("accept -> both decode, through Tolk", [c["total"] for c in calls]))
        print("\nPhases through Tolk (time from the accept to the end of each):\n")
        print("| phase | runs | p50 ms | p90 ms | min ms | max ms |")
        print("|---|---|---|---|---|---|")
        for phase in calls[0]:
            print(summary(phase, [c[phase] for c in calls]))
    except Exception as exc:
        print(
            f"| accept -> both decode, through Tolk | could not run: {type(exc).__name__}: "
            f"{str(exc)[:200]} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--url", help="a running Tolk with the demo roster (default: start one)")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.url))
