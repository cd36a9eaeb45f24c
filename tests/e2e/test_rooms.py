"""Remote consultations in real browsers: the counsellor opens a room and invites the client
by link, the client joins from the guest page, an interpreter is added into the running
call and hands it over; each side leaves and comes back; links that cannot work are
refused on the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, become_available, login_api, screenshot
from tests.e2e.test_day import SIZES

pytestmark = pytest.mark.browser

MEDIA_TIMEOUT_MS = 40_000


def tile(page: Any, role: str) -> Any:
    """The room's tile of the (present) participant with `role`, as this page shows it."""
    return page.locator(f'#room .tile[data-role="{role}"][data-self="false"]').first


def frames(page: Any, role: str) -> int:
    return int(tile(page, role).get_attribute("data-frames-decoded") or 0)


def wait_for_video_from(page: Any, role: str, more_than: int = 0) -> int:
    """Wait until the video of the participant with `role` is decoded on `page` (getStats
    framesDecoded above `more_than`)."""
    try:
        page.wait_for_function(
            # Above n; or, where the count started again below n (a new connection after
            # the participant came back), above 5 on the new one.
            """([role, n]) => [...document.querySelectorAll(`#room .tile[data-role="${role}"]`)]
            .some((t) => {
              const seen = Number(t.dataset.framesDecoded);
              return t.dataset.self === "false" && (seen > n || (seen > 5 && seen < n - 5));
            })""",
            arg=[role, more_than],
            timeout=MEDIA_TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        shown = page.evaluate(
            "() => [document.querySelector('#notice').textContent,"
            " ...[...document.querySelectorAll('#room .tile')].map((t) => ({...t.dataset}))]"
        )
        raise AssertionError(f"no video from the {role} on {page.url}: {shown}") from None
    return frames(page, role)


def all_decode(pages: dict[str, Any]) -> None:
    """Every page decodes the video of every other role, and it keeps coming."""
    for role, page in pages.items():
        for other in pages:
            if other != role:
                wait_for_video_from(page, other, wait_for_video_from(page, other) + 5)


def open_room(counsellor: Any) -> str:
    """Open a room on the counsellor's page; the invitation's path (/join/...)."""
    expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
    counsellor.get_by_role("button", name="Raum für Fernberatung öffnen").click()
    link = counsellor.get_by_label("Link für die Person (einmal gültig)")
    expect(link).to_have_value(re.compile(r"/join/\S+"), timeout=15_000)
    expect(counsellor.get_by_role("img", name="QR-Code des Links")).to_be_visible()
    url = link.input_value()
    return url[url.index("/join/") :]


def join_as_guest(guest: Any, language: str = "uk", name: str = "Oksana") -> None:
    guest.get_by_label("Ihre Sprache").select_option(language)
    guest.get_by_label("Ihr Name (freiwillig)").fill(name)
    guest.get_by_role("button", name="Beitreten").click()
    expect(guest.locator("#room")).to_be_visible(timeout=15_000)


def add_interpreter(counsellor: Any, interpreter: Any) -> None:
    counsellor.get_by_role("button", name="Dolmetscher hinzuziehen").click()
    search = counsellor.get_by_role("searchbox", name="Sprache suchen")
    search.fill("Ukr")
    expect(counsellor.locator("#languages button").first).to_contain_text("Ukrainisch")
    search.press("Enter")
    expect(interpreter.locator("#offer")).to_be_visible(timeout=15_000)
    interpreter.get_by_role("button", name="Annehmen").click()
    expect(interpreter.locator("#room")).to_be_visible(timeout=15_000)


def shoot_room(page: Any, name: str) -> None:
    """Screenshots of the room at desktop, tablet and phone width; the way out stays
    reachable at every size."""
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        expect(page.locator("#room .hangup")).to_be_visible()
        screenshot(page, f"room-{name}-{size}")
    page.set_viewport_size({"width": 1280, "height": 720})


class TestConsultation:
    @pytest.mark.timeout(420)
    def test_client_by_link_interpreter_added_handed_over_everyone_comes_back(
        self, open_page, server: TolkServer
    ):
        """Counsellor and guest talk; an interpreter joins, all three see each other; each
        leaves or reloads and comes back; a hand-over; the counsellor ends it for all."""
        olena = open_page("olena", "/interpreter")
        become_available(olena)
        counsellor = open_page("berater.jobcenter", "/counsellor")
        path = open_room(counsellor)

        guest = open_page(path=path)
        expect(guest.get_by_role("heading", name="Beratung per Video")).to_be_visible()
        # The roster's languages, each in its own name and the page's.
        expect(guest.locator('#guest-language option[value="uk"]')).to_have_text(
            "українська – Ukrainisch"
        )
        join_as_guest(guest)
        all_decode({"counsellor": counsellor, "guest": guest})
        expect(counsellor.locator("#room-status")).to_have_attribute("data-guest", "present")
        expect(tile(counsellor, "guest")).to_contain_text("Oksana")

        expect(counsellor.get_by_role("heading", level=1)).to_have_text("Fernberatung")
        add_interpreter(counsellor, olena)
        three = {"counsellor": counsellor, "guest": guest, "interpreter": olena}
        all_decode(three)
        expect(counsellor.locator("#room-status")).to_have_attribute("data-interpreter", "present")
        expect(tile(guest, "interpreter")).to_contain_text("Olena")
        expect(counsellor.locator('#room .tile[data-speaking="true"]').first).to_be_visible(
            timeout=10_000
        )
        shoot_room(counsellor, "counsellor")
        shoot_room(guest, "guest")

        # The guest closes the page and opens the link again: back in, the others stayed.
        browser_of_guest = guest.context
        guest.close()
        expect(tile(counsellor, "guest")).to_have_attribute("data-present", "false")
        wait_for_video_from(counsellor, "interpreter", frames(counsellor, "interpreter") + 5)
        guest = browser_of_guest.new_page()
        guest.goto(path)
        guest.get_by_role("button", name="Beitreten").click()
        three["guest"] = guest
        all_decode(three)

        # The interpreter's and the counsellor's pages are reloaded: both come back.
        for page in (olena, counsellor):
            page.reload()
            expect(page.locator("#room")).to_be_visible(timeout=20_000)
        all_decode(three)

        # Hand-over: Olena asks for it, Dmytro accepts, Olena leaves once he is in.
        dmytro = open_page("dmytro", "/interpreter")
        become_available(dmytro)
        olena.get_by_role("button", name="Übergeben").click()
        olena.get_by_label("Nächste Dolmetscher*in").select_option("male")
        olena.get_by_role("button", name="Übergabe anfragen").click()
        expect(olena.locator("#notice")).to_contain_text("Übergabe angefragt")
        expect(dmytro.locator("#offer")).to_be_visible(timeout=15_000)
        dmytro.get_by_role("button", name="Annehmen").click()
        expect(olena.locator("#room")).to_be_hidden(timeout=30_000)
        expect(olena.locator("#notice")).to_contain_text("Übergeben")
        all_decode({"counsellor": counsellor, "guest": guest, "interpreter": dmytro})
        expect(tile(counsellor, "interpreter")).to_contain_text("Dmytro")

        # The guest leaves: the others stay; the guest comes back without a new link and
        # all three see each other again.
        left = guest.get_by_role("heading", name="Sie haben die Beratung verlassen.")
        guest.get_by_role("button", name="Verlassen").click()
        expect(left).to_be_visible()
        expect(counsellor.locator('#room .tile[data-role="guest"]')).to_have_count(0)
        expect(counsellor.locator("#room-status")).to_have_attribute("data-guest", "none")
        guest.get_by_role("button", name="Wieder beitreten").click()
        expect(guest.locator("#room")).to_be_visible(timeout=15_000)
        all_decode({"counsellor": counsellor, "guest": guest, "interpreter": dmytro})
        expect(counsellor.locator("#room-status")).to_have_attribute("data-guest", "present")
        guest.get_by_role("button", name="Verlassen").click()
        expect(left).to_be_visible()

        # The counsellor ends the consultation for everyone; the guest can no longer return.
        counsellor.get_by_role("button", name="Beratung beenden").click()
        expect(counsellor.locator("#room")).to_be_hidden(timeout=15_000)
        expect(counsellor.locator("#notice")).to_contain_text("beendet")
        expect(dmytro.locator("#room")).to_be_hidden(timeout=15_000)
        expect(guest.locator("#notice")).to_contain_text("beendet", timeout=15_000)
        expect(guest.get_by_role("button", name="Wieder beitreten")).to_be_hidden()


class TestInvitationLinks:
    @pytest.mark.timeout(240)
    def test_used_and_stale_links_are_refused_plainly(self, open_page):
        """A link works once; a second person is told it was used, and one with a second
        link that the room has its guest; the link of a room that ended opens no room,
        neither that one nor the counsellor's next."""
        counsellor = open_page("berater.caritas", "/counsellor")
        path = open_room(counsellor)
        first = open_page(path=path, locale="en")
        expect(first.get_by_role("heading", name="Video consultation")).to_be_visible()
        first.get_by_label("Your language").select_option("ar")
        first.get_by_role("button", name="Join").click()
        expect(first.locator("#room")).to_be_visible(timeout=15_000)
        second = open_page(path=path)
        second.get_by_label("Ihre Sprache").select_option("ar")
        second.get_by_role("button", name="Beitreten").click()
        expect(second.locator("#notice")).to_contain_text("schon benutzt")
        expect(second.get_by_role("button", name="Beitreten")).to_be_hidden()

        # The client is in: the page shows neither the link nor a way to make another (the
        # room holds one guest); the test makes a second one through the API.
        expect(counsellor.locator("#invitation")).to_be_hidden()
        expect(counsellor.get_by_role("button", name="Einladung erstellen")).to_be_hidden()
        made = counsellor.evaluate(
            """async (id) => (await fetch(`/api/rooms/${id}/invitations`,
            {method: "POST", headers: {Accept: "application/json"}})).json()""",
            counsellor.locator("#room").get_attribute("data-room-id"),
        )
        stale = made["url"][made["url"].index("/join/") :]
        # A second person with that link is refused while the client is in; the client stays.
        other = open_page(path=stale, locale="en")
        other.get_by_role("button", name="Join").click()
        expect(other.locator("#notice")).to_contain_text("already joined this consultation")
        expect(other.get_by_role("button", name="Join")).to_be_hidden()
        expect(counsellor.locator("#room-status")).to_have_attribute("data-guest", "present")
        expect(tile(first, "counsellor")).to_have_attribute("data-present", "true")
        counsellor.get_by_role("button", name="Beratung beenden").click()
        expect(counsellor.locator("#notice")).to_contain_text("beendet")
        expect(first.locator("#notice")).to_contain_text("ended", timeout=15_000)
        open_room(counsellor)  # the counsellor's next room: the old link is not for it

        late = open_page(path=stale)
        late.get_by_role("button", name="Beitreten").click()
        expect(late.locator("#notice")).to_contain_text("gilt nicht")
        expect(late.locator("#room")).to_be_hidden()
        counsellor.get_by_role("button", name="Beratung beenden").click()
        expect(counsellor.locator("#room")).to_be_hidden(timeout=15_000)


@pytest.fixture
def short_lived_links(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TolkServer]:
    """A server of its own whose invitations expire after two seconds."""
    srv = TolkServer(tmp_path_factory.mktemp("tolk-short-links"))
    srv.env["TOLK_INVITATION_TTL_S"] = "2"
    seeded = srv.run("seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    srv.start()
    yield srv
    srv.stop()


class TestExpiredLink:
    @pytest.mark.timeout(180)
    def test_expired_link_is_refused(self, browser, short_lived_links: TolkServer):
        """A link opened after its time ran out says so and lets nobody in."""
        context = browser.new_context(base_url=short_lived_links.url)
        guest_context = browser.new_context(base_url=short_lived_links.url)
        try:
            login_api(context, short_lived_links.url, "berater.sozialamt")
            counsellor = context.new_page()
            counsellor.goto("/counsellor")
            path = open_room(counsellor)
            # Until the link's time has run out (the server's clock is this machine's).
            counsellor.wait_for_function(
                "() => Date.now() > Date.parse(document.querySelector('#invitation')"
                ".dataset.expiresAt) + 500",
                timeout=10_000,
            )
            guest = guest_context.new_page()
            guest.goto(path)
            guest.get_by_role("button", name="Beitreten").click()
            expect(guest.locator("#notice")).to_contain_text("abgelaufen")
            expect(guest.locator("#room")).to_be_hidden()
        finally:
            guest_context.close()
            context.close()
