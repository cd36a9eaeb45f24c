"""A consultation with three parties through a running `tolk serve`: the counsellor opens
a room and invites the client by link, the two talk, an interpreter is asked in through
the usual dispatch, and the three aiortc peers decode each other's video; then a
hand-over to a second interpreter, leaving and rejoining, and the bill per segment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiortc import MediaStreamTrack

from signaling.peers.client import TolkClient
from signaling.peers.media import PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.room import RoomPeer
from signaling.peers.sim import SimInterpreter, SimOptions
from tests.integration.parties import Party, online
from tests.integration.server import TolkServer, backend
from tolk.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.media, pytest.mark.usefixtures("loopback_only")]

COUNSELLOR = "berater.jobcenter"
INTERPRETERS = ("olena", "dmytro")  # both speak Ukrainian in the demo roster
PATTERN = TestPattern("room", 160, 128)


def tracks() -> list[MediaStreamTrack]:
    return [PatternVideoTrack(PATTERN), ToneAudioTrack()]


@pytest.fixture(params=["sqlite", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TolkServer]:
    """`tolk serve` on a fresh database with the demo roster."""
    async with backend(request.param, tmp_path) as data:
        server = TolkServer(tmp_path, data, TOLK_WRAP_UP_S="0")
        try:
            await server.prepare()
            await server.start()
            yield server
        finally:
            server.stop()


@contextlib.asynccontextmanager
async def guest(url: str, token: str) -> AsyncIterator[TolkClient]:
    """A browser without an account that uses the invitation and opens the socket."""
    client = TolkClient(url, "guest", "")
    try:
        await client.request("POST", "/api/guest/session", {"token": token, "language": "uk"})
        await client.connect()
        yield client
    finally:
        await client.close()


async def all_decode(peers: list[RoomPeer], expected_links: int) -> None:
    """Every peer has a link to each other one and decodes its video."""
    for peer in peers:
        for _ in range(200):
            if len(peer.links) == expected_links:
                break
            await asyncio.sleep(0.05)  # links are made as the others' news arrives
        assert len(peer.links) == expected_links, (peer.client.username, list(peer.links))
        for link in peer.links.values():
            await link.sink.wait_for_frames("video", 5, timeout_s=20)


async def asked_and_accepted(
    interpreter: Party, ask: Callable[[], Awaitable[Any]]
) -> dict[str, Any]:
    """`ask` makes a request of the room; the interpreter accepts its offer. The call."""
    offer_seen = asyncio.ensure_future(interpreter.client.wait_for("offer", timeout_s=15))
    await ask()
    offer = (await offer_seen)["offer"]
    accepted = await interpreter.request("POST", f"/api/offers/{offer['id']}/accept")
    return dict(accepted["call"])


class TestRoomFlow:
    @pytest.mark.timeout(180)
    async def test_three_parties_decode_each_other_then_hand_over(self, server):
        """Counsellor and guest, then the interpreter: all three see each other's video; a
        hand-over brings the second interpreter in before the first one's segment ends."""
        first_name, second_name = INTERPRETERS
        async with (
            online(server.url, COUNSELLOR) as counsellor,
            online(server.url, first_name) as first,
            online(server.url, second_name) as second,
        ):
            room = (await counsellor.request("POST", "/api/rooms"))["room"]
            invitation = await counsellor.request("POST", f"/api/rooms/{room['id']}/invitations")
            async with guest(server.url, invitation["token"]) as client:
                peers = [RoomPeer(counsellor.client, room["id"], tracks)]
                peers.append(RoomPeer(client, room["id"], tracks))
                try:
                    for peer in peers:
                        await peer.join()
                    await all_decode(peers, 1)

                    await first.request(
                        "PUT", "/api/interpreters/me/status", {"status": "available"}
                    )
                    segment = await asked_and_accepted(
                        first,
                        lambda: counsellor.request(
                            "POST", f"/api/rooms/{room['id']}/requests", {"language": "uk"}
                        ),
                    )
                    assert segment["room_id"] == room["id"]
                    connected = asyncio.ensure_future(
                        counsellor.client.wait_for(
                            lambda m: (
                                m.get("type") == "call.updated"
                                and m["call"]["id"] == segment["id"]
                                and m["call"]["state"] == "connected"
                            ),
                            timeout_s=30,
                        )
                    )
                    peers.append(RoomPeer(first.client, room["id"], tracks))
                    await peers[-1].join()
                    await all_decode(peers, 2)
                    await connected

                    await second.request(
                        "PUT", "/api/interpreters/me/status", {"status": "available"}
                    )
                    await asked_and_accepted(
                        second,
                        lambda: first.request("POST", f"/api/calls/{segment['id']}/handover", {}),
                    )
                    handed = asyncio.ensure_future(
                        first.client.wait_for(
                            lambda m: (
                                m.get("type") == "call.updated"
                                and m["call"]["id"] == segment["id"]
                                and m["call"]["state"] == "ended"
                            ),
                            timeout_s=20,
                        )
                    )
                    incoming = RoomPeer(second.client, room["id"], tracks)
                    await incoming.join()
                    assert (await handed)["call"]["end_reason"] == "handover"
                    await peers.pop().close()
                    peers.append(incoming)
                    await all_decode(peers[:2], 2)
                    for link in incoming.links.values():
                        await link.sink.wait_for_frames("video", 5, timeout_s=20)
                finally:
                    for peer in peers:
                        await peer.close()
            ended = await counsellor.request("POST", f"/api/rooms/{room['id']}/hangup")
            assert ended["room"]["state"] == "ended"

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("server", ["sqlite"], indirect=True)
    async def test_the_simulated_interpreter_joins_a_room_of_three(self, server):
        """A simulated interpreter accepts a room's request, links to the counsellor and the
        guest, and leaves the room when it ends; it is available again afterwards."""
        sim = SimInterpreter(
            SimOptions(
                url=server.url,
                username=INTERPRETERS[0],
                password=DEMO_PASSWORD,
                video_size=(160, 128),
            )
        )
        running = asyncio.get_running_loop().create_task(sim.run())
        try:
            async with online(server.url, COUNSELLOR) as counsellor:
                room = (await counsellor.request("POST", "/api/rooms"))["room"]
                invitation = await counsellor.request(
                    "POST", f"/api/rooms/{room['id']}/invitations"
                )
                async with guest(server.url, invitation["token"]) as client:
                    peers = [
                        RoomPeer(counsellor.client, room["id"], tracks),
                        RoomPeer(client, room["id"], tracks),
                    ]
                    try:
                        for peer in peers:
                            await peer.join()
                        for _ in range(200):
                            if sim.client.connected and sim.client.user:
                                break
                            await asyncio.sleep(0.05)  # the sim logs in on its own
                        await counsellor.request(
                            "POST", f"/api/rooms/{room['id']}/requests", {"language": "uk"}
                        )
                        await all_decode(peers, 2)
                    finally:
                        for peer in peers:
                            await peer.close()
                await counsellor.request("POST", f"/api/rooms/{room['id']}/hangup")
                for _ in range(200):
                    if not sim.rooms:
                        break
                    await asyncio.sleep(0.05)  # the sim hears of the end on its socket
                assert sim.rooms == {}
                assert sim.accepted == 1
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
