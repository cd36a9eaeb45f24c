"""A self-service terminal in Chromium at touch-screen sizes: logged in once by its device
link, a person taps their language, waits, talks to a simulated interpreter, ends; the
page resets after the call and after a while without a touch, and keeps nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import (
    ACTION_TIMEOUT_MS,
    TolkServer,
    login_api,
    run_axe,
    screenshot,
    serving,
)
from tests.e2e.test_call import CONNECT_TIMEOUT_MS, wait_for_video
from tests.processes import stop

pytestmark = pytest.mark.browser

IDLE_S = 6
"""TOLK_TERMINAL_IDLE_RESET_S of this module's server: the inactivity reset, driven by the
setting (the tests wait for the reset as an event, never for a fixed time)."""
SIZES = {"portrait": (1080, 1920), "landscape": (1920, 1080)}


@pytest.fixture(scope="module")
def kiosk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TolkServer]:
    folder = tmp_path_factory.mktemp("tolk-terminal")
    yield from serving(folder, TOLK_TERMINAL_IDLE_RESET_S=str(IDLE_S))


def device_link(server: TolkServer) -> str:
    """The demo terminal's device link as `tolk seed-demo` prints it (a fresh one each run
    while no device is logged in)."""
    seeded = server.run("seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    found = re.search(r"terminal\.friedensplatz\s+(/device#\S+)", seeded.stdout)
    assert found, seeded.stdout
    return found.group(1)


@pytest.fixture(scope="module")
def admin_api(playwright: Any, kiosk_server: TolkServer) -> Iterator[Any]:
    """The admin's session on the API, for the device links the kiosks open."""
    api = playwright.request.new_context(base_url=kiosk_server.url)
    login_api(api, kiosk_server.url, "admin")
    yield api
    api.dispose()


def new_device_link(admin_api: Any, origin: str) -> str:
    """A new device link for the demo terminal, as the admin's "Neuer Geräte-Link" makes it
    (the link before stops working; opening it logs the device before out)."""
    listed = admin_api.get("/api/admin/terminals").json()["terminals"]
    (foyer,) = [t["id"] for t in listed if t["name"] == "Terminal Foyer"]
    made = admin_api.post(f"/api/admin/terminals/{foyer}/link", headers={"Origin": origin})
    assert made.status == 201, made.text()
    url: str = made.json()["link"]["url"]
    return url[url.index("/device#") :]


Kiosk = Callable[..., Any]


@pytest.fixture
def kiosk(browser: Any, kiosk_server: TolkServer, admin_api: Any) -> Iterator[Kiosk]:
    """kiosk(size) -> the terminal's page in a fresh touch-screen context, logged in by
    opening a new device link, on its start screen."""
    contexts: list[Any] = []

    def open_(size: str, *, bypass_csp: bool = False) -> Any:
        width, height = SIZES[size]
        context = browser.new_context(
            base_url=kiosk_server.url,
            viewport={"width": width, "height": height},
            has_touch=True,
            bypass_csp=bypass_csp,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(new_device_link(admin_api, kiosk_server.url))
        expect(page).to_have_url(re.compile(r"/terminal$"))
        expect(page.locator("body")).to_have_attribute("data-screen", "start")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        expect(page.locator("#t-languages button").first).to_be_visible()
        return page

    yield open_
    for context in contexts:
        context.close()


def small_targets(page: Any) -> list[str]:
    """Visible buttons smaller than 64 x 64 CSS pixels."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('button')]
            .filter((b) => b.offsetParent !== null)
            .filter((b) => {
              const r = b.getBoundingClientRect();
              return r.width < 64 || r.height < 64;
            })
            .map((b) => b.id || b.dataset.tag || b.className || b.textContent.trim())"""
    )
    return found


def kept(page: Any) -> list[Any]:
    """What the browser keeps of the page: storage entries and history length (the tab's
    first entry is Playwright's about:blank, then the device link replaced by /terminal)."""
    result: list[Any] = page.evaluate(
        "() => [localStorage.length, sessionStorage.length, history.length]"
    )
    return result


def sim_calls(log: Path) -> list[dict[str, int]]:
    """What the simulated interpreter decoded in each call it finished (its `sim_call_over`
    lines), oldest first."""
    return [
        json.loads(line)["frames_received"]
        for line in log.read_text().splitlines()
        if '"sim_call_over"' in line
    ]


def resets(page: Any) -> int:
    return int(page.locator("body").get_attribute("data-resets") or 0)


@pytest.fixture(scope="module")
def layla(kiosk_server: TolkServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The simulated Arabic interpreter, started once for the calls of both sizes; the
    path of its log."""
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    sim = kiosk_server.sim_interpreter("layla", log=log)
    yield log
    stop(sim)


class TestTerminalCall:
    @pytest.mark.timeout(240)
    @pytest.mark.parametrize("size", SIZES)
    def test_tap_a_language_talk_and_end(self, kiosk, layla, size):
        """Arabic by its own name, the wait, a video call with the simulated interpreter in
        which both sides decode video, "Beenden", back to the start with nothing kept."""
        page = kiosk(size)
        screens: list[str] = []
        page.expose_function("seen", lambda screen: screens.append(screen))
        page.evaluate(
            """() => new MutationObserver(() => window.seen(document.body.dataset.screen))
                .observe(document.body, {attributes: true, attributeFilter: ['data-screen']})"""
        )
        arabic = page.locator('#t-languages button[data-tag="ar"]')
        expect(arabic.locator(".own")).to_have_text("العربية")
        expect(arabic).to_contain_text("أحتاج إلى مترجم")
        expect(arabic.locator(".avail")).to_be_visible(timeout=20_000)
        assert small_targets(page) == []
        screenshot(page, f"terminal-start-{size}")
        before, calls = resets(page), len(sim_calls(layla))

        arabic.tap()
        call = page.locator("#call")
        expect(call).to_be_visible(timeout=15_000)
        expect(call).to_have_attribute("data-media", "connected", timeout=CONNECT_TIMEOUT_MS)
        wait_for_video(page, wait_for_video(page) + 10)
        assert screens[:2] == ["wait", "call"], screens
        hangup = call.locator("button.hangup")
        expect(hangup).to_have_text("End")  # English: Tolk has no Arabic words for it
        assert small_targets(page) == []
        screenshot(page, f"terminal-call-{size}")

        hangup.tap()
        expect(call).to_be_hidden(timeout=15_000)
        expect(page.locator("body")).to_have_attribute("data-screen", "start")
        assert resets(page) == before + 1
        expect(page.locator("#t-notice")).to_contain_text("Das Gespräch ist beendet")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        # The simulated interpreter is available again once it has logged its call.
        expect(arabic.locator(".avail")).to_be_visible(timeout=20_000)
        finished = sim_calls(layla)
        assert len(finished) == calls + 1
        assert finished[-1]["video"] > 0
        assert kept(page) == [0, 0, 2]


class TestReset:
    @pytest.mark.timeout(120)
    def test_inactivity_resets_the_start_and_the_wait_screen(self, kiosk):
        """A choice left on the start screen, and a wait nobody watches, go back to the start
        after TOLK_TERMINAL_IDLE_RESET_S; the wait asks "still there?" first and its request
        is withdrawn."""
        page = kiosk("portrait")
        start = resets(page)
        page.locator("#mode-audio").tap()
        expect(page.locator("#mode-audio")).to_have_attribute("aria-checked", "true")
        page.wait_for_function("n => Number(document.body.dataset.resets) > n", arg=start)
        expect(page.locator("#mode-video")).to_have_attribute("aria-checked", "true")

        # Tigrinya: the demo's Tigrinya interpreter is not online, so the request waits.
        page.locator('#t-languages button[data-tag="ti"]').tap()
        expect(page.locator("#wait")).to_be_visible()
        expect(page.locator("#wait-own")).to_have_text("ትግርኛ")
        expect(page.locator("#wait-phrase")).to_have_text("ንዚ ቋንቋ እዚ ተርጓሚ የድልየኒ")
        # "being called" shows only until the request's answer says it is queued.
        expect(page.locator("#wait-status")).to_contain_text("number 1 in the queue")
        expect(page.locator("#wait-clock")).to_be_visible()
        with page.expect_request(
            lambda r: r.method == "DELETE" and "/api/requests/" in r.url,
            timeout=IDLE_S * 1000 + 5000,
        ):
            expect(page.locator("#wait-still")).to_be_visible(timeout=IDLE_S * 1000 + 5000)
            screenshot(page, "terminal-wait-portrait")
        expect(page.locator("body")).to_have_attribute("data-screen", "start")
        expect(page.locator("#wait")).to_be_hidden()
        assert kept(page) == [0, 0, 2]

    def test_cancel_goes_back_at_once(self, kiosk):
        """ "Abbrechen" on the wait screen withdraws the request and shows the start."""
        page = kiosk("landscape")
        page.locator('#t-languages button[data-tag="ti"]').tap()
        expect(page.locator("#wait")).to_be_visible()
        expect(page.locator("#wait-status")).to_contain_text("Platz 1 in der Warteschlange")
        page.locator("#wait-cancel").tap()
        expect(page.locator("body")).to_have_attribute("data-screen", "start")
        expect(page.locator("#t-notice")).to_be_empty()


class TestDeviceLogin:
    def test_a_device_link_works_once(self, browser, kiosk_server):
        """The second browser that opens the same link is told it is spent; the first one
        is the terminal."""
        link = device_link(kiosk_server)
        first = browser.new_context(base_url=kiosk_server.url)
        second = browser.new_context(base_url=kiosk_server.url)
        try:
            page = first.new_page()
            page.goto(link)
            expect(page).to_have_url(re.compile(r"/terminal$"))
            other = second.new_page()
            other.goto(link)
            expect(other.locator("#device-message")).to_contain_text("Link")
            expect(other).to_have_url(re.compile(r"/device$"))  # the secret left the address
            assert other.request.get("/api/me").status == 401
        finally:
            first.close()
            second.close()


class TestAccessibility:
    @pytest.mark.parametrize("size", SIZES)
    def test_start_and_wait_screens_pass_axe(self, kiosk, size):
        """axe-core finds nothing serious or critical on the start and the wait screen."""
        page = kiosk(size, bypass_csp=True)
        assert run_axe(page) == []
        page.locator('#t-languages button[data-tag="ti"]').tap()
        expect(page.locator("#wait")).to_be_visible()
        assert run_axe(page) == []
        page.locator("#wait-cancel").tap()
        expect(page.locator("body")).to_have_attribute("data-screen", "start")


class TestAdmin:
    @pytest.mark.timeout(120)
    def test_admin_adds_a_terminal_and_revokes_it(self, browser, kiosk_server):
        """The admin adds a terminal at a site and sees its device link once; opened on the
        device it is the terminal, listed as logged in; revoked, the device is logged out."""
        admin = browser.new_context(base_url=kiosk_server.url)
        device = browser.new_context(base_url=kiosk_server.url)
        try:
            login_api(admin, kiosk_server.url, "admin")
            page = admin.new_page()
            page.goto("/admin")
            page.get_by_role("tab", name="Terminals").click()
            panel = page.locator("#panel-terminals")
            panel.get_by_label("Name").fill("Eingang Infopoint")
            panel.get_by_label("Standort").select_option(
                label="Infopoint (Stadt Dortmund – Sozialamt)"
            )
            panel.get_by_role("button", name="Terminal anlegen").click()
            link = panel.locator("#device-link code")
            expect(link).to_contain_text("/device#")
            url = link.inner_text()
            row = panel.locator("tr", has_text="Eingang Infopoint")
            expect(row).to_contain_text("Geräte-Link gültig bis")
            screenshot(page, "terminal-admin")

            kiosk = device.new_page()
            kiosk.goto(url)
            expect(kiosk).to_have_url(re.compile(r"/terminal$"))
            expect(kiosk.locator("#conn")).to_have_attribute("data-state", "open")
            page.reload()
            page.get_by_role("tab", name="Terminals").click()
            expect(row).to_contain_text("angemeldet")
            expect(panel.locator("#device-link")).to_have_count(0)  # shown once

            row.get_by_role("button", name="Sperren").click()
            expect(row).to_contain_text("gesperrt")
            expect(kiosk).to_have_url(re.compile(r"/\?loggedout=1$"), timeout=15_000)
        finally:
            admin.close()
            device.close()
