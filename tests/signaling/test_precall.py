"""The pre-call check: the server echoes a browser's own media and reports the path."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection, RTCSessionDescription

from accounts.models import Role
from infra.config import Settings
from signaling.peers.media import FrameSink, PatternVideoTrack, TestPattern, ToneAudioTrack
from signaling.peers.rtc import rtc_configuration
from signaling.precall import ECHO_PEERS
from tests.signaling.loopback import loopback_only, sqlite_stack
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("loopback_only")
__all__ = ["loopback_only", "sqlite_stack"]


@pytest.fixture
def stack(sqlite_stack):
    return sqlite_stack


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One slot, open to every caller (TestEchoSlots keeps slots for counsellors).
    return settings.model_copy(
        update={"precall_max_peers": 1, "precall_counsellor_slots": 0, "precall_max_s": 30}
    )


class Browser:
    """A stand-in for the counsellor's browser: an aiortc peer with a camera and a mic."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.sink = FrameSink()
        self.pc.addTrack(PatternVideoTrack(TestPattern("echo")))
        self.pc.addTrack(ToneAudioTrack())
        self.pc.on("track", self.sink.add)

    async def offer(self) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"type": "offer", "sdp": self.pc.localDescription.sdp}

    async def close(self) -> None:
        await self.sink.close()
        await self.pc.close()


async def wait_for_report(client, precall_id, ready, timeout_s: float = 10.0) -> dict:
    """Poll the report until `ready(report)` (RTCP arrives about once a second)."""
    async with asyncio.timeout(timeout_s):
        while True:
            report = await (await client.get(f"/api/precall/{precall_id}")).json()
            if ready(report):
                return report
            await asyncio.sleep(0.25)


class TestEcho:
    async def test_browser_sees_its_own_camera_and_gets_a_path_report(self, client, factory):
        """The browser's video and audio come back, and the report has RTT, loss and relay."""
        await factory.login(await factory.user(Role.COUNSELLOR))
        browser = Browser()
        try:
            resp = await client.post(
                "/api/precall", json=await browser.offer(), headers=factory.headers()
            )
            assert resp.status == 201, await resp.text()
            answer = await resp.json()
            assert answer["type"] == "answer"
            assert 0 < answer["expires_in_s"] <= 30
            await browser.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await browser.sink.wait_for_frames("video", count=5, timeout_s=10)
            await browser.sink.wait_for_frames("audio", count=5, timeout_s=10)
            report = await wait_for_report(
                client, answer["id"], lambda r: r["rtt_ms"] is not None and r["packets_received"]
            )
            assert report["state"] == "connected"
            assert 0 <= report["rtt_ms"] < 1000
            assert report["packets_lost"] >= 0
            assert report["relay"] is False
            assert report["local_candidate"] == "host"
        finally:
            await browser.close()
        assert (
            await client.delete(f"/api/precall/{answer['id']}", headers=factory.headers())
        ).status == 204
        assert (await client.get(f"/api/precall/{answer['id']}")).status == 404

    async def test_a_browser_that_closes_its_peer_frees_the_echo(self, client, factory):
        """A page that leaves closes its connection; the echo ends without waiting for DELETE."""
        await factory.login(await factory.user(Role.COUNSELLOR))
        browser = Browser()
        try:
            resp = await client.post(
                "/api/precall", json=await browser.offer(), headers=factory.headers()
            )
            answer = await resp.json()
            await browser.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await browser.sink.wait_for_frames("video", count=3, timeout_s=10)
        finally:
            await browser.close()

        async def gone() -> bool:
            return (await client.get(f"/api/precall/{answer['id']}")).status == 404

        await eventually(gone, timeout=5)

    async def test_limit_per_instance_answers_429(self, client, factory):
        """With every echo slot taken, another user is told to retry later."""
        await factory.login(await factory.user(Role.COUNSELLOR))
        first = Browser()
        second = Browser()
        other = await factory.new_client()
        try:
            resp = await client.post(
                "/api/precall", json=await first.offer(), headers=factory.headers()
            )
            assert resp.status == 201
            await factory.login(await factory.user(Role.COUNSELLOR), other)
            busy = await other.post(
                "/api/precall", json=await second.offer(), headers=factory.headers()
            )
            assert busy.status == 429
            assert busy.headers["Retry-After"] == "30"
            assert (await busy.json())["error"]["code"] == "precall_busy"
            # Nor may the other user read or stop the first user's check.
            precall_id = (await resp.json())["id"]
            assert (await other.get(f"/api/precall/{precall_id}")).status == 404
        finally:
            await first.close()
            await second.close()
            await other.close()

    async def test_a_new_check_replaces_the_users_old_one(self, client, factory):
        """One user holds one echo: starting again frees the old slot."""
        await factory.login(await factory.user(Role.INTERPRETER))
        browsers = [Browser(), Browser()]
        try:
            ids = []
            for browser in browsers:
                resp = await client.post(
                    "/api/precall", json=await browser.offer(), headers=factory.headers()
                )
                assert resp.status == 201
                ids.append((await resp.json())["id"])
            assert (await client.get(f"/api/precall/{ids[0]}")).status == 404
            assert (await client.get(f"/api/precall/{ids[1]}")).status == 200
        finally:
            for browser in browsers:
                await browser.close()

    async def test_anonymous_and_bad_offers_are_refused(self, client, factory):
        """No login: 401; a missing SDP: 422 naming the field."""
        assert (await client.post("/api/precall", json={"sdp": "v=0 " * 5})).status == 401
        await factory.login(await factory.user())
        resp = await client.post("/api/precall", json={}, headers=factory.headers())
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["field"] == "sdp"
        garbage = await client.post(
            "/api/precall", json={"sdp": "v=0\r\nnot an offer at all"}, headers=factory.headers()
        )
        assert garbage.status == 422
        assert (await garbage.json())["error"]["fields"][0]["field"] == "sdp"


class TestEchoLifetime:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"precall_max_s": 1})

    async def test_echo_closes_after_its_time_limit(self, client, factory):
        """An echo peer ends by itself after precall_max_s."""
        await factory.login(await factory.user())
        browser = Browser()
        try:
            resp = await client.post(
                "/api/precall", json=await browser.offer(), headers=factory.headers()
            )
            precall_id = (await resp.json())["id"]
            async with asyncio.timeout(5):
                # The API has no event for the end of a check: poll it, as a page would.
                while (await client.get(f"/api/precall/{precall_id}")).status != 404:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
        finally:
            await browser.close()


class TestEchoSlots:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={"precall_max_peers": 2, "precall_counsellor_slots": 1, "precall_max_s": 30}
        )

    async def start(self, factory, role: Role) -> tuple[int, Browser, TestClient]:
        """A user of `role` in a browser of their own starts a check: (status, browser, client)."""
        client = await factory.new_client()
        await factory.login(await factory.user(role), client)
        browser = Browser()
        resp = await client.post(
            "/api/precall", json=await browser.offer(), headers=factory.headers()
        )
        return resp.status, browser, client

    async def test_only_those_who_make_calls_may_check(self, client, factory):
        """Finance gets 403 and takes no slot."""
        status, browser, other = await self.start(factory, Role.FINANCE)
        try:
            assert status == 403
            assert len(client.app[ECHO_PEERS]) == 0
        finally:
            await browser.close()
            await other.close()

    async def test_interpreters_and_admins_leave_the_counsellors_slots_free(self, client, factory):
        """With one slot kept for counsellors, a second interpreter waits, a counsellor not."""
        started = [
            await self.start(factory, Role.INTERPRETER),
            await self.start(factory, Role.ADMIN),
            await self.start(factory, Role.COUNSELLOR),
            await self.start(factory, Role.COUNSELLOR),
        ]
        try:
            assert [s for s, _, _ in started] == [201, 429, 201, 429]
        finally:
            for _, browser, other in started:
                await browser.close()
                await other.close()

    async def test_one_user_holds_one_echo_even_when_asking_twice_at_once(self, client, factory):
        """Two checks started at the same moment by one user leave one echo running."""
        await factory.login(await factory.user(Role.INTERPRETER))
        browsers = [Browser(), Browser()]
        try:
            offers = [await b.offer() for b in browsers]
            results = await asyncio.gather(
                *(client.post("/api/precall", json=o, headers=factory.headers()) for o in offers)
            )
            assert [r.status for r in results] == [201, 201]
            assert len(client.app[ECHO_PEERS]) == 1
        finally:
            for browser in browsers:
                await browser.close()
