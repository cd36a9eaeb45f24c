"""Consultation-room set-up times on loopback through a real Tolk server, with aiortc peers:
from the guest using the invitation to the guest's first decoded frame of the counsellor,
and from the interpreter's accept to all three decoding each other's video; in the same
run a direct aiortc-to-aiortc call as the baseline.

    python -m bench.room_peers [--runs 5] [--url http://127.0.0.1:8080]

Without --url it starts its own `tolk serve` (fresh SQLite, demo roster, wrap-up 0 s).
Results: bench/results/room_peers.md. (bench.room_setup measures the same in browsers.)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.call_setup import direct_call, loopback_only, own_server, summary
from signaling.peers.client import TolkClient
from signaling.peers.media import PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.room import RoomPeer
from tolk.demo import DEMO_PASSWORD
from tolk.logging import configure_logging

PATTERN = TestPattern("room bench", 640, 480)
COUNSELLOR = "berater.jobcenter"
INTERPRETER = "olena"


def tracks() -> list[Any]:
    return [PatternVideoTrack(PATTERN), ToneAudioTrack()]


async def decoded(peers: list[RoomPeer], links: int) -> None:
    """Until each peer has `links` links, each with a decoded video frame."""
    for peer in peers:
        for _ in range(4000):  # 20 s at most
            if len(peer.links) >= links:
                break
            await asyncio.sleep(0.005)  # links appear as the news of arrivals comes in
        for link in peer.links.values():
            await link.sink.wait_for_frames("video", 1, timeout_s=20)


async def one_room(url: str, counsellor: TolkClient, interpreter: TolkClient) -> dict[str, float]:
    """One consultation: guest by link, then the interpreter; the times of both steps."""
    room = (await counsellor.request("POST", "/api/rooms"))["room"]
    invitation = await counsellor.request("POST", f"/api/rooms/{room['id']}/invitations")
    host = RoomPeer(counsellor, room["id"], tracks)
    await host.join()
    guest = TolkClient(url, "guest", "")
    peers = [host]
    try:
        started = time.perf_counter()
        await guest.request(
            "POST", "/api/guest/session", {"token": invitation["token"], "language": "uk"}
        )
        await guest.connect()
        peers.append(RoomPeer(guest, room["id"], tracks))
        await peers[-1].join()
        await decoded(peers[1:], 1)
        guest_frame = time.perf_counter() - started
        offer_seen = asyncio.ensure_future(interpreter.wait_for("offer", timeout_s=15))
        await counsellor.request("POST", f"/api/rooms/{room['id']}/requests", {"language": "uk"})
        offer = (await offer_seen)["offer"]
        accepted = time.perf_counter()
        await interpreter.request("POST", f"/api/offers/{offer['id']}/accept")
        peers.append(RoomPeer(interpreter, room["id"], tracks))
        await peers[-1].join()
        await decoded(peers, 2)
        all_three = time.perf_counter() - accepted
    finally:
        for peer in peers:
            await peer.close()
        await counsellor.request("POST", f"/api/rooms/{room['id']}/hangup")
        await guest.close()
    return {"guest": guest_frame, "three": all_three}


async def measure(url: str, runs: int) -> list[dict[str, float]]:
    counsellor = TolkClient(url, COUNSELLOR, DEMO_PASSWORD)
    interpreter = TolkClient(url, INTERPRETER, DEMO_PASSWORD)
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in (counsellor, interpreter):
            await client.login()
            await client.connect()
            tasks.append(asyncio.get_running_loop().create_task(client.run_socket()))
        available = {"status": "available"}
        samples = []
        for _ in range(runs + 1):  # the first is a warm-up: imports, codec set-up
            await interpreter.request("PUT", "/api/interpreters/me/status", available)
            samples.append(await one_room(url, counsellor, interpreter))
        return samples[1:]
    finally:
        for task in tasks:
            task.cancel()
        for client in (counsellor, interpreter):
            await client.close()


async def main(runs: int, url: str | None) -> None:
    configure_logging("console", "warning")
    loopback_only()
    await direct_call()  # warm-up
    direct = [await direct_call() for _ in range(runs)]
    print("| path | runs | p50 ms | p90 ms | min ms | max ms |")
    print("|---|---|---|---|---|---|")
    print(summary("direct aiortc <-> aiortc (baseline)", direct), flush=True)
    if url:
        rooms = await measure(url, runs)
    else:
        async with own_server() as own:
            rooms = await measure(own, runs)
    print(summary("invitation used -> guest decodes the counsellor", [r["guest"] for r in rooms]))
    print(
        summary("interpreter's accept -> all three decode each other", [r["three"] for r in rooms])
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a running Tolk with the demo roster (default: start one)")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.url))
