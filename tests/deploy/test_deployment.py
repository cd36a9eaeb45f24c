"""The deployment of deploy/ on this machine: nginx with TLS in front of two `tolk serve`
instances on PostgreSQL and Redis, Chromium over https, an instance killed mid-call.

Where a socket lands: nginx balances round robin and Tolk needs no sticky sessions, so
the test asks each instance's /metrics (on its own port, as Prometheus does) which one
holds the counsellor's socket, and starts the simulated interpreter again (with requests
of its own through nginx in between, to move the round robin on) until its socket is on
the other instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.deploy.nginx import Nginx, nginx_binary
from tests.integration.server import TolkServer, backend
from tests.processes import stop

playwright_async = pytest.importorskip("playwright.async_api")

# One deployment for the module's tests (starting it takes most of a minute).
pytestmark = [
    pytest.mark.deploy,
    pytest.mark.browser,
    pytest.mark.postgres,
    pytest.mark.asyncio(loop_scope="module"),
]

PASSWORD = "demo-tolk-2026"
HEARTBEAT_S = 5
WAIT_MS = 30_000


@dataclass
class Deployment:
    """The running deployment: nginx, the two instances, and where things are."""

    nginx: Nginx
    instances: list[TolkServer]
    env: dict[str, str]
    tls: ssl.SSLContext

    @property
    def origin(self) -> str:
        return self.nginx.origin

    def client(self, address: str = "127.0.0.1", **kw: Any) -> aiohttp.ClientSession:
        """A client of the public origin, connecting from a loopback address of its own."""
        connector = aiohttp.TCPConnector(ssl=self.tls, local_addr=(address, 0))
        jar = aiohttp.CookieJar(unsafe=True)
        return aiohttp.ClientSession(connector=connector, cookie_jar=jar, **kw)

    async def login(self, address: str, username: str, password: str, **headers: str) -> int:
        async with (
            self.client(address) as http,
            http.post(
                self.origin + "/api/session",
                json={"username": username, "password": password},
                headers={"Origin": self.origin, **headers},
            ) as resp,
        ):
            return resp.status


async def sockets_on(server: TolkServer) -> dict[str, float]:
    """Open sockets per role on one instance, from its own /metrics."""
    try:
        async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return {}
    return {
        sample.labels["role"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "tolk_sockets_open"
        for sample in family.samples
    }


async def holder_of(deployment: Deployment, role: str, within_s: float = 45) -> int:
    """The index of the instance holding the one socket of `role`."""
    deadline = time.monotonic() + within_s
    while True:
        counts = [(await sockets_on(s)).get(role, 0) for s in deployment.instances]
        if sorted(counts) == [0, 1]:
            return counts.index(1)
        assert time.monotonic() < deadline, f"{role} sockets per instance: {counts}"
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("deployment")
    nginx_binary()
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - once, before anything starts
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    async with backend("postgres", tmp_path) as data:
        shared = {
            "TOLK_REDIS_NAMESPACE": "deploy-" + secrets.token_hex(4),
            "TOLK_SECRET_KEY": "deploy-test-" + secrets.token_hex(16),
            "TOLK_TRUSTED_PROXIES": '["127.0.0.1"]',
            "TOLK_WS_HEARTBEAT_S": str(HEARTBEAT_S),
        }
        instances = [TolkServer(tmp_path / f"i{n}", data, **shared) for n in (1, 2)]
        nginx = Nginx(tmp_path / "nginx", [s.port for s in instances])
        for server in instances:
            server.log.parent.mkdir()
            server.env["TOLK_PUBLIC_ORIGIN"] = nginx.origin
        await instances[0].prepare()  # `tolk migrate` and the demo roster, once
        try:
            for server in instances:
                await server.start()
            nginx.start()
            tls = ssl.create_default_context(cafile=str(nginx.cert))
            yield Deployment(nginx, instances, {**instances[0].env}, tls)
        finally:
            nginx.stop()
            for server in instances:
                server.stop()


@contextlib.contextmanager
def sim_interpreter(deployment: Deployment, log: Path) -> Any:
    """`tolk sim-interpreter` for dmytro (uk) through nginx, trusting the test's certificate."""
    env = {**deployment.env, "SSL_CERT_FILE": str(deployment.nginx.cert)}
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [
                *(sys.executable, "-m", "tolk", "sim-interpreter", "--url", deployment.origin),
                *("--username", "dmytro", "--password", PASSWORD),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop(proc)


class TestDeployment:
    @pytest.mark.timeout(300)  # the first test waits for the deployment to start
    async def test_the_proxy_passes_the_client_and_serves_what_it_should(
        self, deployment: Deployment
    ):
        """Failed logins from other addresses do not lock out the owner at theirs; static
        files come from nginx; http redirects; /metrics is not public; pages carry HSTS."""
        origin = deployment.origin
        for _ in range(6):
            status = await deployment.login("127.0.0.2", "berater.caritas", "wrong-password")
        assert status == 429
        assert await deployment.login("127.0.0.2", "berater.caritas", PASSWORD) == 429
        # Claiming another address does not help: nginx appends the real one.
        forged = {"X-Forwarded-For": "127.0.0.3"}
        assert await deployment.login("127.0.0.2", "berater.caritas", PASSWORD, **forged) == 429
        assert await deployment.login("127.0.0.3", "berater.caritas", PASSWORD) == 200

        async with deployment.client() as http:
            async with http.get(origin + "/static/js/api.js") as resp:
                assert resp.status == 200
                assert resp.headers["Cache-Control"] == "no-cache"
            async with http.get(origin + "/metrics") as resp:
                assert resp.status == 404
            async with http.get(origin + "/") as resp:
                assert resp.status == 200
                assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
                assert (
                    "connect-src 'self' wss://127.0.0.1:" in resp.headers["Content-Security-Policy"]
                )
            plain = f"http://127.0.0.1:{deployment.nginx.http_port}/counsellor"
            async with http.get(plain, allow_redirects=False) as resp:
                assert resp.status == 301
                assert resp.headers["Location"].startswith("https://127.0.0.1")

    @pytest.mark.timeout(420)
    async def test_a_call_survives_the_death_of_an_instance_and_is_billed_once(
        self, deployment: Deployment, tmp_path: Path
    ):
        """Counsellor and interpreter on different instances hold a call; the counsellor's
        instance is killed; the socket comes back through nginx to the survivor, the call
        goes on as the same call, and it is billed once for the time it really lasted."""
        expect = playwright_async.expect
        origin = deployment.origin
        async with playwright_async.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(base_url=origin, ignore_https_errors=True)
            context.set_default_timeout(WAIT_MS)
            login = await context.request.post(
                "/api/session",
                data={"username": "berater.sozialamt", "password": PASSWORD},
                headers={"Origin": origin},
            )
            assert login.ok, await login.text()
            page = await context.new_page()
            await page.goto("/counsellor")
            assert await page.evaluate("window.isSecureContext")
            await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
            counsellor_on = await holder_of(deployment, "counsellor")

            with contextlib.ExitStack() as stack:
                for attempt in range(8):
                    stack.close()
                    log = tmp_path / f"sim-{attempt}.log"
                    stack.enter_context(sim_interpreter(deployment, log))
                    if await holder_of(deployment, "interpreter") != counsellor_on:
                        break
                    stack.close()
                    await wait_for_no_interpreter(deployment)
                    # Requests of our own move nginx's round robin on: one, then two, ...
                    # so that whatever a start of the interpreter costs in requests, every
                    # other attempt lands on the other instance.
                    async with deployment.client() as http:
                        for _ in range(attempt + 1):
                            await http.get(origin + "/healthz")
                else:
                    pytest.fail("the interpreter's socket never landed on the other instance")

                uk = page.locator('#languages button[data-tag="uk"]')
                await expect(uk).to_contain_text("jetzt verfügbar")
                search = page.get_by_role("searchbox", name="Sprache suchen")
                await search.fill("Ukr")
                await search.press("Enter")
                call = page.locator("#call")
                await expect(call).to_have_attribute("data-media", "connected")
                connected = time.monotonic()
                call_id = await call.get_attribute("data-call-id")
                assert call_id
                # The fake camera sends about 20 frames a second: a few seconds of call.
                frames = await wait_for_video(page, await wait_for_video(page, 0) + 60)

                deployment.instances[counsellor_on].kill()
                survivor = deployment.instances[1 - counsellor_on]
                await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
                await wait_until_sockets(survivor, counsellor=1, interpreter=1)
                # The same call goes on: video keeps arriving (for some 15 s, three
                # heartbeats, in which the survivor records who is still in the call), and
                # the server says connected.
                frames = await wait_for_video(page, frames + 300)
                assert await call.get_attribute("data-call-id") == call_id
                state = await context.request.get(f"/api/calls/{call_id}")
                assert (await state.json())["call"]["state"] == "connected"

                await page.get_by_role("button", name="Auflegen").click()
                lasted = time.monotonic() - connected
                await expect(call).to_be_hidden()
                # The interpreter's side decoded the browser's video all along, too.
                received = await call_over_in(log, call_id)
                assert received["video"] > 5 * lasted, received
            await browser.close()

        async with deployment.client() as http:
            admin = {"username": "admin", "password": PASSWORD}
            async with http.post(
                origin + "/api/session", json=admin, headers={"Origin": origin}
            ) as resp:
                assert resp.status == 200
            async with http.get(origin + "/api/usage?format=json") as resp:
                records = [r for r in await resp.json() if r["call_id"] == call_id]
        assert len(records) == 1, records
        (record,) = records
        assert record["end_reason"] == "hangup"
        print(f"billed {record['duration_s']} s of a call that lasted {lasted:.1f} s")
        assert abs(record["duration_s"] - lasted) <= HEARTBEAT_S, (record, lasted)


async def wait_for_video(page: Any, more_than: int) -> int:
    """Wait until the browser has decoded more than `more_than` video frames (getStats)."""
    await page.wait_for_function(
        "n => Number(document.querySelector('#call').dataset.framesDecoded) > n",
        arg=more_than,
        timeout=WAIT_MS,
    )
    return int(await page.locator("#call").get_attribute("data-frames-decoded") or 0)


async def wait_until_sockets(server: TolkServer, within_s: float = 30, **roles: int) -> None:
    deadline = time.monotonic() + within_s
    while True:
        counts = await sockets_on(server)
        if all(counts.get(role, 0) == n for role, n in roles.items()):
            return
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.1)


async def call_over_in(log: Path, call_id: str, within_s: float = 30) -> dict[str, int]:
    """The frames the simulated interpreter received in a call, from its log line."""
    deadline = time.monotonic() + within_s
    while True:
        for line in log.read_text(errors="replace").splitlines():  # noqa: ASYNC240 - small
            if '"sim_call_over"' in line and call_id in line:
                return dict(json.loads(line)["frames_received"])
        assert time.monotonic() < deadline, "the simulated interpreter did not end the call"
        await asyncio.sleep(0.1)


async def wait_for_no_interpreter(deployment: Deployment) -> None:
    for server in deployment.instances:
        await wait_until_sockets(server, interpreter=0)
