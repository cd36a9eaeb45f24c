"""End-to-end fixtures: the real `tolk serve` in a subprocess on a free port with a seeded
SQLite database, and Debian's Chromium driven by Playwright (sync API, plain sync tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.processes import free_port, stop

playwright_sync = pytest.importorskip("playwright.sync_api")

HERE = Path(__file__).resolve().parent
TOLK = Path(sys.executable).parent / "tolk"
AXE = HERE.parents[1] / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE / "screenshots"
PASSWORD = "demo-tolk-2026"
ACTION_TIMEOUT_MS = 10_000
START_TIMEOUT_S = 30


class TolkServer:
    """`tolk serve` as a subprocess, restartable on the same port and database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TOLK_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/tolk.db",
            "TOLK_HOST": "127.0.0.1",
            "TOLK_PORT": str(self.port),
            "TOLK_SECRET_KEY": "e2e-secret-" + os.urandom(8).hex(),
            "TOLK_LOG_FORMAT": "json",
            "TOLK_LOG_LEVEL": "warning",
        }
        self.env.pop("TOLK_REDIS_URL", None)
        self.log_path = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a `tolk` command against this server's database."""
        return subprocess.run(  # noqa: S603 (our own console script)
            [str(TOLK), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [str(TOLK), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tolk serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("tolk serve did not answer /healthz in time")

    def stop(self) -> None:
        if self.process is None:
            return
        stop(self.process)
        self.process = None

    def sim_interpreter(self, username: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        """`tolk sim-interpreter` logged in as `username` against this server; with `log`,
        its info events (`sim_call_over` counts the frames it decoded) go to that file."""
        env = self.env
        if log is not None:
            env = {**env, "TOLK_LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1"}
        with log.open("ab") if log is not None else open(os.devnull, "wb") as out:
            return subprocess.Popen(  # noqa: S603 (our own console script)
                [
                    str(TOLK),
                    "sim-interpreter",
                    *("--url", self.url, "--username", username, "--password", PASSWORD),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def restart(self) -> None:
        self.stop()
        self.start()

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310
            return json.loads(response.read())


def serving(folder: Path, **env: str) -> Iterator[TolkServer]:
    """`tolk serve` with the demo roster in `folder`, with `env` on top; stopped after."""
    if not TOLK.exists():
        pytest.skip("the tolk console script is not installed in this environment")
    srv = TolkServer(folder)
    srv.env.update(env)
    seeded = srv.run("seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TolkServer]:
    yield from serving(tmp_path_factory.mktemp("tolk-e2e"))


# Module scope, not session: while Playwright's sync API is open it holds an event loop as
# the running loop of the main thread, and the async tests of other packages that run after
# these would fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    with playwright_sync.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def browser_asking_for_media(playwright: Any) -> Iterator[Any]:
    """Chromium without the fake permission prompt, so that a blocked camera stays blocked."""
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
    yield chromium
    chromium.close()


OpenPage = Callable[..., Any]


@pytest.fixture
def open_page(
    browser: Any, server: TolkServer, request: pytest.FixtureRequest
) -> Iterator[OpenPage]:
    """open_page(username=None, path=None, *, locale=None, bypass_csp=False, timezone_id=None)
    -> a Page in a fresh browser context (its own cookies: one person), logged in when a
    username is given."""
    contexts: list[Any] = []

    def open_(
        username: str | None = None,
        path: str | None = None,
        *,
        locale: str | None = None,
        bypass_csp: bool = False,
        deny_media: bool = False,
        timezone_id: str | None = None,
    ) -> Any:
        chromium = request.getfixturevalue("browser_asking_for_media") if deny_media else browser
        context = chromium.new_context(
            base_url=server.url, bypass_csp=bypass_csp, timezone_id=timezone_id
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        if locale:
            context.add_init_script(f"localStorage.setItem('tolk.locale', '{locale}')")
        page = context.new_page()
        if deny_media:
            deny_camera(page, server.url)
        if username:
            login_api(context, server.url, username)
        if path or username:
            page.goto(path or "/")
        return page

    yield open_
    for context in contexts:
        context.close()


def login_api(context: Any, base_url: str, username: str) -> None:
    """Log a browser context (or an API request context) in through the API (the login form
    has its own test)."""
    response = getattr(context, "request", context).post(
        "/api/session",
        data={"username": username, "password": PASSWORD},
        headers={"Origin": base_url},
    )
    assert response.ok, response.text()


def deny_camera(page: Any, origin: str) -> None:
    """Block camera and microphone for the origin, as a user who clicked "Block" would."""
    cdp = page.context.new_cdp_session(page)
    for name in ("camera", "microphone"):
        cdp.send(
            "Browser.setPermission",
            {"permission": {"name": name}, "setting": "denied", "origin": origin},
        )


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str) -> Path:
    """Write a full-page screenshot to tests/e2e/screenshots/ (ignored by git)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def become_available(interpreter: Any) -> None:
    """The interpreter's socket is open and the "Verfügbar" switch makes them available."""
    expect = playwright_sync.expect
    expect(interpreter.locator("#conn")).to_have_attribute("data-state", "open")
    interpreter.get_by_label("Verfügbar").check()
    expect(interpreter.locator("#status")).to_have_attribute("data-presence", "available")
