"""A whole interpreted call in two browsers, and the counsellor's side against an aiortc
simulated interpreter."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, become_available, login_api
from tests.processes import stop

pytestmark = pytest.mark.browser

CONNECT_TIMEOUT_MS = 30_000


def frames_decoded(page: Any) -> int:
    return int(page.locator("#call").get_attribute("data-frames-decoded") or 0)


def wait_for_video(page: Any, more_than: int = 0) -> int:
    """Wait until inbound video frames (getStats framesDecoded) exceed `more_than`."""
    page.wait_for_function(
        "n => Number(document.querySelector('#call').dataset.framesDecoded) > n",
        arg=more_than,
        timeout=CONNECT_TIMEOUT_MS,
    )
    return frames_decoded(page)


def request_ukrainian(counsellor: Any) -> None:
    search = counsellor.get_by_role("searchbox", name="Sprache suchen")
    search.fill("Ukr")
    expect(counsellor.locator("#languages button").first).to_contain_text("Ukrainisch")
    search.press("Enter")


class TestCall:
    @pytest.mark.timeout(240)
    def test_counsellor_and_interpreter_talk_and_finance_sees_it(self, open_page, server):
        """Request Ukrainian, the interpreter accepts, both see video, hang up, it is billed."""
        interpreter = open_page("olena", "/interpreter")
        become_available(interpreter)
        # Earlier tests on this server may have given Olena calls today already.
        calls_before = interpreter.evaluate(
            "async () => (await (await fetch('/api/interpreters/me/today')).json()).today.calls"
        )
        counsellor = open_page("berater.jobcenter", "/counsellor")
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
        request_ukrainian(counsellor)
        expect(counsellor.locator("#status")).to_contain_text("Ukrainisch")

        offer = interpreter.locator("#offer")
        expect(offer).to_be_visible(timeout=15_000)
        expect(offer).to_contain_text("Ukrainisch")
        expect(interpreter.locator("#offer-remaining")).to_contain_text("Sekunden")
        interpreter.get_by_role("button", name="Annehmen").click()

        for page in (counsellor, interpreter):
            expect(page.locator("#call")).to_be_visible(timeout=15_000)
            expect(page.locator("#call")).to_have_attribute(
                "data-media", "connected", timeout=CONNECT_TIMEOUT_MS
            )
        # Video arrives both ways and keeps arriving (framesDecoded grows on both sides).
        first = {id(p): wait_for_video(p) for p in (counsellor, interpreter)}
        for page in (counsellor, interpreter):
            wait_for_video(page, first[id(page)] + 10)
        expect(counsellor.locator("#status")).to_contain_text("verbunden", timeout=15_000)
        expect(counsellor.locator(".timer")).not_to_have_text("00:00", timeout=5_000)
        call_id = counsellor.locator("#call").get_attribute("data-call-id")
        assert call_id

        counsellor.get_by_role("button", name="Auflegen").click()
        expect(counsellor.locator("#call")).to_be_hidden(timeout=15_000)
        expect(counsellor.locator("#notice")).to_contain_text("beendet")
        expect(interpreter.locator("#call")).to_be_hidden(timeout=15_000)
        expect(interpreter.locator("#wrapup")).to_be_visible()
        interpreter.get_by_role("button", name="Jetzt bereit").click()
        expect(interpreter.locator("#status")).to_have_attribute("data-presence", "available")
        # Counted by the server (GET /api/interpreters/me/today), not by this browser.
        counted = re.compile(rf"^{calls_before + 1} Gespräch")
        expect(interpreter.locator("#today")).to_have_text(counted)
        interpreter.reload()
        expect(interpreter.locator("#today")).to_have_text(counted)

        finance = open_page("finanzen", "/finance")
        row = finance.locator(f'#usage tr[data-call-id="{call_id}"]')
        for _ in range(10):  # the usage record is written when the call ends: allow a moment
            if row.count():
                break
            finance.get_by_role("button", name="Anzeigen").click()
            finance.wait_for_load_state("networkidle")
        expect(row).to_contain_text("Ukrainisch")
        with finance.expect_download(timeout=15_000) as download:
            finance.get_by_role("link", name="CSV für Programme").click()
        csv_text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert call_id in csv_text

    def test_refused_camera_is_explained_and_nothing_is_requested(self, open_page):
        """A counsellor whose camera is blocked is told how to allow it; no request goes out."""
        counsellor = open_page("berater.caritas", "/counsellor", deny_media=True)
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
        requests: list[str] = []
        counsellor.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
        request_ukrainian(counsellor)
        expect(counsellor.locator("#notice")).to_contain_text("nicht freigegeben")
        expect(counsellor.locator("#chooser")).to_be_visible()
        assert not [r for r in requests if r.startswith("POST") and r.endswith("/api/requests")]


class TestSocketCut:
    @pytest.mark.timeout(180)
    def test_interpreter_page_comes_back_into_its_call(self, open_page, server: TolkServer):
        """The interpreter's socket is cut mid-call: it reconnects, rejoins, media goes on."""
        interpreter = open_page(path="/")
        sockets: list[Any] = []

        def proxy(ws: Any) -> None:
            ws.connect_to_server()  # messages pass through unchanged until we cut it
            sockets.append(ws)

        # The interpreter page asks for its socket as `/ws?as=interpreter`.
        interpreter.route_web_socket(re.compile(r"/ws(\?|$)"), proxy)
        login_api(interpreter.context, server.url, "omar")
        interpreter.goto("/interpreter")
        become_available(interpreter)
        counsellor = open_page("berater.jobcenter", "/counsellor")
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
        search = counsellor.get_by_role("searchbox", name="Sprache suchen")
        search.fill("ar")
        expect(counsellor.locator('#languages button[data-tag="ar"]')).to_be_visible()
        counsellor.locator('#languages button[data-tag="ar"]').click()
        expect(interpreter.locator("#offer")).to_be_visible(timeout=15_000)
        interpreter.get_by_role("button", name="Annehmen").click()
        for page in (counsellor, interpreter):
            expect(page.locator("#call")).to_have_attribute(
                "data-media", "connected", timeout=CONNECT_TIMEOUT_MS
            )
        wait_for_video(interpreter)

        cut = len(sockets)
        sockets[-1].close(code=4000, reason="cut by the test")
        interpreter.wait_for_function(
            "() => document.querySelector('#conn').dataset.state !== 'open'", timeout=5_000
        )
        expect(interpreter.locator("#conn")).to_have_attribute("data-state", "open", timeout=20_000)
        assert len(sockets) > cut  # a new socket, not the old one revived
        expect(interpreter.locator("#call")).to_be_visible()
        for page in (counsellor, interpreter):
            expect(page.locator("#call")).to_have_attribute("data-media", "connected")
            wait_for_video(page, frames_decoded(page) + 10)
        # The new socket is in the call's room: the counsellor's hangup reaches it.
        counsellor.get_by_role("button", name="Auflegen").click()
        expect(interpreter.locator("#call")).to_be_hidden(timeout=15_000)
        expect(interpreter.locator("#wrapup")).to_be_visible()
        interpreter.get_by_role("button", name="Jetzt bereit").click()
        expect(interpreter.locator("#status")).to_have_attribute("data-presence", "available")
        interpreter.get_by_label("Nicht im Dienst").check()
        expect(interpreter.locator("#status")).to_have_attribute("data-presence", "offline")


def is_signal(frame: str | bytes, kind: str) -> bool:
    """Whether a socket frame is a `signal` holding a description of `kind`."""
    msg = json.loads(frame)
    return msg.get("type") == "signal" and msg["data"].get("description", {}).get("type") == kind


class TestReloadedPage:
    @pytest.mark.timeout(180)
    def test_reloaded_page_drops_the_answer_meant_for_the_page_before(
        self, open_page, server: TolkServer
    ):
        """The counsellor reloads mid-call and the answer held for the page before reaches
        the new one just as it offers: it is not taken for the answer to the new offer, and
        the call's media comes back."""
        interpreter = open_page("olena", "/interpreter")
        become_available(interpreter)
        counsellor = open_page(path="/")
        answers: list[str | bytes] = []  # the answers the counsellor's page was given
        stale: list[str | bytes] = []  # given to the page just before its next offer leaves

        def proxy(ws: Any) -> None:
            server_side = ws.connect_to_server()

            def to_page(frame: str | bytes) -> None:
                if is_signal(frame, "answer"):
                    answers.append(frame)
                ws.send(frame)

            def to_server(frame: str | bytes) -> None:
                if stale and is_signal(frame, "offer"):
                    ws.send(stale.pop())
                server_side.send(frame)

            server_side.on_message(to_page)
            ws.on_message(to_server)

        counsellor.route_web_socket(re.compile(r"/ws(\?|$)"), proxy)
        login_api(counsellor.context, server.url, "berater.jobcenter")
        counsellor.goto("/counsellor")
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
        request_ukrainian(counsellor)
        expect(interpreter.locator("#offer")).to_be_visible(timeout=15_000)
        interpreter.get_by_role("button", name="Annehmen").click()
        for page in (counsellor, interpreter):
            expect(page.locator("#call")).to_have_attribute(
                "data-media", "connected", timeout=CONNECT_TIMEOUT_MS
            )
        seen_by_interpreter = wait_for_video(interpreter)
        assert answers

        stale.append(answers[-1])
        counsellor.reload()
        expect(counsellor.locator("#call")).to_be_visible(timeout=15_000)
        expect(counsellor.locator("#call")).to_have_attribute(
            "data-media", "connected", timeout=CONNECT_TIMEOUT_MS
        )
        assert not stale  # the old answer did reach the new page
        wait_for_video(counsellor, wait_for_video(counsellor) + 10)
        wait_for_video(interpreter, seen_by_interpreter + 10)
        counsellor.get_by_role("button", name="Auflegen").click()
        expect(interpreter.locator("#call")).to_be_hidden(timeout=15_000)


class TestSimulatedInterpreter:
    @pytest.mark.timeout(180)
    def test_browser_talks_to_aiortc(self, open_page, server: TolkServer):
        """The browser and an aiortc simulated interpreter exchange video."""
        sim = server.sim_interpreter("dmytro")
        try:
            counsellor = open_page("berater.sozialamt", "/counsellor")
            expect(counsellor.locator('#languages button[data-tag="uk"]')).to_contain_text(
                "jetzt verfügbar", timeout=20_000
            )
            request_ukrainian(counsellor)
            expect(counsellor.locator("#call")).to_have_attribute(
                "data-media", "connected", timeout=CONNECT_TIMEOUT_MS
            )
            wait_for_video(counsellor, wait_for_video(counsellor) + 10)
            counsellor.get_by_role("button", name="Auflegen").click()
            expect(counsellor.locator("#call")).to_be_hidden(timeout=15_000)
        finally:
            stop(sim)
