"""A counsellor's and an interpreter's whole day in one tab each: many calls in a row
without a reload, mixing video, audio only, a declined offer, an offer that rings out, a
request cancelled while queued, and either side hanging up first."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, become_available, login_api, screenshot, serving
from tests.processes import stop

pytestmark = pytest.mark.browser

CONNECT_TIMEOUT_MS = 30_000
OFFER_TIMEOUT_S = 8  # long enough for a loaded machine to click, short to ring out
MEASUREMENTS = Path(__file__).resolve().parents[2] / "bench" / "out" / "call_setup.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TolkServer]:
    """A server of this module's own: offers ring out after a few seconds, not twenty."""
    yield from serving(
        tmp_path_factory.mktemp("tolk-day"),
        TOLK_OFFER_TIMEOUT_S=str(OFFER_TIMEOUT_S),
        TOLK_ICE_HOST_ADDRESSES='["127.0.0.1"]',
    )


@pytest.fixture(scope="module")
def sims(server: TolkServer) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Simulated interpreters for Ukrainian, Arabic and Dari, started once: they warm up
    while the first page loads."""
    started = {name: server.sim_interpreter(name) for name in ("dmytro", "layla", "farid")}
    yield started
    for sim in started.values():
        stop(sim)


def call_box(page: Any) -> Any:
    return page.locator("#call")


def media_count(page: Any, what: str) -> int:
    return int(call_box(page).get_attribute(f"data-{what}") or 0)


def wait_for_media(page: Any, what: str = "frames-decoded", more_than: int = 0) -> int:
    """Wait until the call's inbound counter (`frames-decoded` or `audio-samples`) grows."""
    key = "".join(w.capitalize() if i else w for i, w in enumerate(what.split("-")))
    page.wait_for_function(
        "([key, n]) => Number(document.querySelector('#call').dataset[key]) > n",
        arg=[key, more_than],
        timeout=CONNECT_TIMEOUT_MS,
    )
    return media_count(page, what)


def media_flows(page: Any, audio_only: bool = False, more_than: int = 0) -> None:
    """Media of the other side arrives and keeps arriving (audio only: audio)."""
    what = "audio-samples" if audio_only else "frames-decoded"
    first = wait_for_media(page, what, more_than)
    wait_for_media(page, what, first + (4800 if audio_only else 5))


def request_language(counsellor: Any, query: str, tag: str, audio_only: bool = False) -> None:
    audio = counsellor.get_by_label("Nur Ton (ohne Kamera)")
    if audio.is_checked() != audio_only:
        audio.set_checked(audio_only)
    search = counsellor.get_by_role("searchbox", name="Sprache suchen")
    expect(search).to_be_visible()
    search.fill(query)
    expect(counsellor.locator("#languages button").first).to_have_attribute("data-tag", tag)
    search.press("Enter")


def in_call(page: Any) -> None:
    expect(call_box(page)).to_be_visible(timeout=15_000)
    expect(call_box(page)).to_have_attribute("data-media", "connected", timeout=CONNECT_TIMEOUT_MS)


def call_over(page: Any) -> None:
    expect(call_box(page)).to_be_hidden(timeout=15_000)


def both_talking(counsellor: Any, interpreter: Any, audio_only: bool = False) -> None:
    """Both pages show the call connected, with media flowing each way."""
    for page in (counsellor, interpreter):
        in_call(page)
    for page in (counsellor, interpreter):
        media_flows(page, audio_only=audio_only)


def take_talk_and_hang_up(counsellor: Any, interpreter: Any) -> None:
    """The interpreter takes the offer, media flows both ways, the counsellor hangs up."""
    interpreter.get_by_role("button", name="Annehmen").click()
    both_talking(counsellor, interpreter)
    counsellor.get_by_role("button", name="Auflegen").click()
    for page in (counsellor, interpreter):
        call_over(page)


def ready_again(interpreter: Any) -> None:
    """After a call: the wrap-up card, then "Jetzt bereit" makes the interpreter available."""
    expect(interpreter.locator("#wrapup")).to_be_visible(timeout=15_000)
    interpreter.get_by_role("button", name="Jetzt bereit").click()
    expect(interpreter.locator("#status")).to_have_attribute("data-presence", "available")


class TestSimulatedInterpreterDay:
    @pytest.mark.timeout(300)
    @pytest.mark.usefixtures("sims")
    def test_many_calls_in_one_tab(self, open_page: Any) -> None:
        """Five calls in a row to aiortc interpreters, video and audio only, no reload."""
        setup_ms: list[float] = []
        counsellor = open_page("berater.sozialamt", "/counsellor")
        for tag in ("uk", "ar"):
            expect(counsellor.locator(f'#languages button[data-tag="{tag}"]')).to_contain_text(
                "jetzt verfügbar", timeout=20_000
            )
        plan = [("Ukr", "uk", False), ("Arab", "ar", False), ("Ukr", "uk", True)]
        plan += [("ar", "ar", False), ("uk", "uk", False)]
        admin = open_page("admin", "/admin")
        for index, (query, tag, audio_only) in enumerate(plan):
            numbered = index == len(plan) - 1
            if numbered:  # the centre now shows counsellors numbers instead of names
                show_interpreters_as(admin, "die Nummer")
            request_language(counsellor, query, tag, audio_only)
            in_call(counsellor)
            who = counsellor.locator(".who-line")
            if numbered:
                expect(who).to_have_text(
                    re.compile(r"^Dolmetscher\*in Nr\. \d+ · Dolmetschpool Dortmund · Ukrainisch$")
                )
                show_interpreters_as(admin, "den Namen")
            else:
                expect(who).to_contain_text("Dolmetschpool Dortmund")
                expect(who).not_to_contain_text("Nr.")
            media_flows(counsellor, audio_only)
            if not audio_only:
                box = call_box(counsellor)
                expect(box).to_have_attribute("data-setup-ms", re.compile(r"\d+"))
                setup_ms.append(float(box.get_attribute("data-setup-ms") or 0))
            else:
                expect(counsellor.locator(".remote-placeholder")).to_be_visible()
            counsellor.get_by_role("button", name="Auflegen").click()
            call_over(counsellor)
            expect(counsellor.locator("#notice")).to_contain_text("beendet")
        assert all(ms > 0 for ms in setup_ms), setup_ms
        MEASUREMENTS.parent.mkdir(exist_ok=True)
        MEASUREMENTS.write_text(
            json.dumps({"click_to_first_frame_ms": setup_ms, "p50": statistics.median(setup_ms)})
        )


def show_interpreters_as(admin: Any, choice: str) -> None:
    """The admin chooses on the admin page what counsellors see: "den Namen" or "die Nummer"."""
    form = admin.locator("#shown-as")
    form.get_by_label(choice).check()
    with admin.expect_response(
        lambda r: r.request.method == "PUT" and r.url.endswith("/api/admin/settings")
    ) as saved:
        form.get_by_role("button", name="Speichern").click()
    assert saved.value.ok
    expect(admin.locator("#shown-as").get_by_label(choice)).to_be_checked()


SIZES = {"laptop": (1366, 657), "tablet": (768, 1024), "phone": (390, 844)}


def shoot_call_screen(page: Any, role: str) -> None:
    """Screenshots of the call screen at three sizes in both languages; the controls and
    the other side's name stay inside the window at every size."""
    for locale in ("de", "en"):
        page.locator("#locale").select_option(locale)
        hangup = "Auflegen" if locale == "de" else "Hang up"
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            for element in (page.get_by_role("button", name=hangup), page.locator(".who-line")):
                expect(element).to_be_in_viewport(ratio=1)
            screenshot(page, f"call-{role}-{size}-{locale}")
    page.locator("#locale").select_option("de")
    page.set_viewport_size({"width": 1280, "height": 720})


def offer_id(interpreter: Any) -> str:
    offer = interpreter.locator("#offer")
    expect(offer).to_be_visible(timeout=15_000)
    return str(offer.get_attribute("data-offer-id"))


class TestTwoBrowsersDay:
    @pytest.mark.timeout(300)
    def test_counsellor_and_interpreter_call_after_call(self, open_page: Any) -> None:
        """Five requests in a row in one tab each: video, audio only with the interpreter
        hanging up first, a declined offer then a cancel while queued, an offer that rings
        out then a second that is taken, and video again; media both ways in every call."""
        interpreter = open_page("olena", "/interpreter")
        expect(interpreter.locator("#presence")).to_contain_text("Nicht im Dienst")
        become_available(interpreter)
        counsellor = open_page("berater.jobcenter", "/counsellor")
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
        both = (counsellor, interpreter)

        # 1. Video; the counsellor sees who interprets and hangs up.
        request_language(counsellor, "Russ", "ru")
        expect(counsellor.get_by_role("button", name="Abbrechen")).to_be_focused()
        offer_id(interpreter)
        expect(interpreter.locator("#offer")).not_to_contain_text("nur Ton")
        # Switching the language mid-offer says every visible text again, status included.
        interpreter.locator("#locale").select_option("en")
        expect(interpreter.locator("#status")).to_have_text("Incoming request: Russian")
        expect(interpreter.locator("#offer-text")).to_have_text("Russian for Jobcenter Dortmund")
        expect(interpreter.get_by_role("button", name="Accept")).to_be_visible()
        interpreter.locator("#locale").select_option("de")
        expect(interpreter.locator("#status")).to_have_text("Neue Anfrage: Russisch")
        interpreter.get_by_role("button", name="Annehmen").click()
        both_talking(counsellor, interpreter)
        expect(counsellor.locator(".who-line")).to_have_text(
            "Olena Kovalenko · Dolmetschpool Dortmund · Russisch"
        )
        expect(counsellor.get_by_role("button", name="Auflegen")).to_be_focused()
        expect(counsellor.locator("h1")).to_be_hidden()
        expect(counsellor.locator(".quality")).to_contain_text("Verbindung", timeout=10_000)
        counsellor.get_by_role("button", name="Mikrofon an").click()
        muted = counsellor.get_by_role("button", name="Mikrofon aus")
        expect(muted).to_have_attribute("aria-pressed", "true")
        expect(counsellor.locator(".self-badge")).to_be_visible()
        muted.click()
        expect(counsellor.get_by_role("button", name="Mikrofon an")).to_have_attribute(
            "aria-pressed", "false"
        )
        shoot_call_screen(counsellor, "counsellor")
        shoot_call_screen(interpreter, "interpreter")
        counsellor.get_by_role("button", name="Auflegen").click()
        for page in both:
            call_over(page)
        expect(counsellor.locator("#notice")).to_contain_text("beendet")
        ready_again(interpreter)

        # 2. Audio only; the interpreter hangs up first.
        request_language(counsellor, "Russ", "ru", audio_only=True)
        offer_id(interpreter)
        expect(interpreter.locator("#offer")).to_contain_text("nur Ton")
        interpreter.get_by_role("button", name="Annehmen").click()
        both_talking(counsellor, interpreter, audio_only=True)
        for page in both:
            expect(page.locator(".remote-placeholder")).to_have_text("Nur Ton – kein Bild")
            expect(page.locator(".self-placeholder")).to_be_visible()
        screenshot(counsellor, "call-counsellor-audio-only-de")
        interpreter.get_by_role("button", name="Auflegen").click()
        for page in both:
            call_over(page)
        expect(counsellor.locator("#notice")).to_contain_text("beendet")
        ready_again(interpreter)

        # 3. Declined: the counsellor is told others are asked, waits, and cancels with Esc.
        request_language(counsellor, "Russ", "ru")
        offer_id(interpreter)
        interpreter.get_by_role("button", name="Ablehnen").click()
        expect(counsellor.locator("#status")).to_contain_text("nicht angenommen")
        expect(counsellor.locator("#status")).to_contain_text("Warteschlange")
        counsellor.keyboard.press("Escape")
        expect(counsellor.locator("#notice")).to_contain_text("abgebrochen")
        expect(counsellor.get_by_role("searchbox", name="Sprache suchen")).to_be_focused()
        expect(interpreter.locator("#status")).to_have_attribute("data-presence", "available")

        # 4. The first offer rings out; the next wave offers it again, and it is taken.
        request_language(counsellor, "Russ", "ru")
        first = offer_id(interpreter)
        interpreter.wait_for_function(
            "id => document.querySelector('#offer').dataset.offerId !== id",
            arg=first,
            polling=100,
            timeout=(OFFER_TIMEOUT_S + 10) * 1000,
        )
        expect(counsellor.locator("#status")).to_contain_text("nicht angenommen")
        take_talk_and_hang_up(counsellor, interpreter)
        ready_again(interpreter)

        # 5. Video again, after all of that, still in the same two tabs.
        request_language(counsellor, "Russ", "ru")
        offer_id(interpreter)
        take_talk_and_hang_up(counsellor, interpreter)
        expect(interpreter.locator("#wrapup")).to_be_visible()
        expect(interpreter.locator("#today")).to_contain_text("4 Gespräche")


class TestStalledCall:
    @pytest.mark.timeout(180)
    @pytest.mark.usefixtures("sims")
    def test_call_that_does_not_connect_offers_to_request_again(
        self, open_page: Any, server: TolkServer
    ) -> None:
        """Signals are lost: after ~10 s the screen says so and offers "Neu anfordern",
        which ends that call and asks again; the new call connects."""
        counsellor = open_page()
        blocking = {"signals": True}

        def proxy(ws: Any) -> None:
            upstream = ws.connect_to_server()

            def forward(message: str | bytes) -> None:
                if blocking["signals"] and '"type":"signal"' in str(message).replace(" ", ""):
                    return  # lost on the way: the call cannot connect
                upstream.send(message)

            ws.on_message(forward)

        counsellor.route_web_socket("**/ws", proxy)
        login_api(counsellor.context, server.url, "berater.caritas")
        counsellor.goto("/counsellor")
        expect(counsellor.locator('#languages button[data-tag="fa-AF"]')).to_contain_text(
            "jetzt verfügbar", timeout=20_000
        )
        request_language(counsellor, "Dari", "fa-AF")
        expect(call_box(counsellor)).to_be_visible(timeout=15_000)
        first_call = call_box(counsellor).get_attribute("data-call-id")
        banner = counsellor.locator(".call-banner")
        expect(banner).to_be_visible(timeout=15_000)
        expect(banner).to_contain_text("kommt nicht zustande")
        blocking["signals"] = False
        counsellor.get_by_role("button", name="Neu anfordern").click()
        expect(call_box(counsellor)).not_to_have_attribute(
            "data-call-id", first_call or "", timeout=20_000
        )
        in_call(counsellor)
        media_flows(counsellor)
        expect(banner).to_be_hidden()
        counsellor.get_by_role("button", name="Auflegen").click()
        call_over(counsellor)


class TestFindingTheLanguage:
    @pytest.mark.parametrize(
        ("typed", "tag"),
        [
            ("Farsi", "fa"),
            ("prs", "fa-AF"),
            ("Tigrinisch", "ti"),
            ("Kurmanci", "kmr"),
            ("Sorani", "ckb"),
            ("ትግርኛ", "ti"),
        ],
    )
    def test_what_staff_type_finds_the_language(self, open_page: Any, typed: str, tag: str) -> None:
        """Colloquial names, codes, own names and names without accents find the language."""
        counsellor = open_page("berater.caritas", "/counsellor")
        counsellor.get_by_role("searchbox", name="Sprache suchen").fill(typed)
        expect(counsellor.locator(f'#languages button[data-tag="{tag}"]')).to_be_visible()

    def test_tiles_show_the_own_name_and_the_client_can_point(self, open_page: Any) -> None:
        """Tiles carry the language's own name; "Welche Sprache?" lets the client tap it,
        which requests that language."""
        counsellor = open_page("berater.caritas", "/counsellor")
        tile = counsellor.locator('#languages button[data-tag="uk"]')
        expect(tile.locator(".autonym")).to_have_text("українська")
        expect(counsellor.locator('#languages button[data-tag="ar"] .autonym')).to_have_text(
            "العربية"
        )
        counsellor.get_by_role("searchbox", name="Sprache suchen").fill("xyz")
        expect(counsellor.locator("#no-match")).to_contain_text("Welche Sprache?")
        counsellor.get_by_role("button", name="Welche Sprache? – der Person zeigen").click()
        ask = counsellor.locator("#ask")
        expect(ask).to_be_visible()
        expect(ask.locator('button[data-tag="uk"]')).to_contain_text("Мені потрібен перекладач")
        screenshot(counsellor, "counsellor-ask-de")
        ask.locator('button[data-tag="ti"]').click()
        expect(ask).to_be_hidden()
        expect(counsellor.locator("#status")).to_contain_text("Tigrinya: Zurzeit ist niemand")
        counsellor.keyboard.press("Escape")
        expect(counsellor.locator("#notice")).to_contain_text("abgebrochen")


class TestEveryWordInThePagesLanguage:
    def test_server_errors_are_said_in_the_page_language_and_follow_a_switch(
        self, open_page: Any
    ) -> None:
        """A 422 arrives as codes; the page says it in German, and in English after the
        switch, never in the server's English words."""
        finance = open_page("finanzen", "/finance")
        expect(finance.locator("#status")).to_contain_text("geladen")
        finance.get_by_label("andere Tage").check()
        finance.locator("#from").fill("2026-03-01")
        finance.locator("#to").fill("2026-02-01")
        finance.get_by_role("button", name="Anzeigen").click()
        notice = finance.locator("#notice")
        expect(notice).to_contain_text("Bis: muss nach dem Beginn liegen")
        expect(notice).not_to_contain_text("must be after")
        finance.locator("#locale").select_option("en")
        expect(notice).to_contain_text("To: must be after the start")


class TestMediaDrop:
    @pytest.mark.timeout(180)
    def test_a_media_drop_is_shown_over_the_video_and_recovers_by_itself(
        self, open_page: Any, sims: dict[str, subprocess.Popen[bytes]]
    ) -> None:
        """The other side freezes mid-call (its process stopped): "Verbindung gestört"
        appears over the video; when it runs again the call recovers without a click."""
        counsellor = open_page("berater.jobcenter", "/counsellor")
        expect(counsellor.locator('#languages button[data-tag="ar"]')).to_contain_text(
            "jetzt verfügbar", timeout=20_000
        )
        request_language(counsellor, "Arab", "ar")
        in_call(counsellor)
        media_flows(counsellor)
        banner = counsellor.locator(".call-banner")
        layla = sims["layla"]
        os.kill(layla.pid, signal.SIGSTOP)
        try:
            expect(banner).to_be_visible(timeout=20_000)
            expect(banner).to_contain_text("Verbindung gestört")
        finally:
            os.kill(layla.pid, signal.SIGCONT)
        expect(banner).to_be_hidden(timeout=30_000)
        expect(call_box(counsellor)).to_have_attribute("data-media", "connected")
        media_flows(counsellor, more_than=media_count(counsellor, "frames-decoded"))
        # Leaving the page mid-call asks first (staying keeps the call).
        with counsellor.expect_event("dialog") as asked:
            counsellor.close(run_before_unload=True)
        assert asked.value.type == "beforeunload"
        asked.value.dismiss()
        expect(call_box(counsellor)).to_be_visible()
        counsellor.get_by_role("button", name="Auflegen").click()
        call_over(counsellor)


class TestCancelOnTheWay:
    def test_esc_while_the_request_is_on_its_way_withdraws_it(self, open_page: Any) -> None:
        """Esc before the server answered the request: the page goes back to the search
        and withdraws the request as soon as it has an id; no search is left running."""
        counsellor = open_page("berater.caritas", "/counsellor")
        held: list[Any] = []
        counsellor.route(
            "**/api/requests",
            lambda route: (
                held.append(route) if route.request.method == "POST" else route.fallback()
            ),
        )
        with counsellor.expect_request(
            lambda r: r.method == "POST" and r.url.endswith("/api/requests")
        ):
            request_language(counsellor, "Tigrinisch", "ti")
        expect(counsellor.get_by_role("button", name="Abbrechen")).to_be_focused()
        counsellor.keyboard.press("Escape")
        expect(counsellor.locator("#notice")).to_contain_text("abgebrochen")
        expect(counsellor.get_by_role("searchbox", name="Sprache suchen")).to_be_visible()
        assert len(held) == 1
        with counsellor.expect_request(
            lambda r: r.method == "DELETE" and "/api/requests/" in r.url
        ) as withdrawn:
            held[0].continue_()
        assert withdrawn.value.response() is not None
        assert withdrawn.value.response().status == 200
        expect(counsellor.locator("#status")).to_contain_text("Wählen Sie eine Sprache")
