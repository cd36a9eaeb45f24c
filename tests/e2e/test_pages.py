"""The pages in real Chromium against the real server: login and landing, logout, security
headers and weight, the language switch, accessibility, and the socket coming back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, TolkServer, login_api, run_axe, screenshot

pytestmark = pytest.mark.browser

LANDING = {
    "berater.jobcenter": "/counsellor",
    "olena": "/interpreter",
    "finanzen": "/finance",
    "admin": "/admin",
    "leitung": "/stats",
}
# Every page, and who may open it.
PAGES = {
    "login": (None, "/"),
    "counsellor": ("berater.jobcenter", "/counsellor"),
    "interpreter": ("olena", "/interpreter"),
    "finance": ("finanzen", "/finance"),
    "admin": ("admin", "/admin"),
    "check": ("berater.sozialamt", "/check"),
    "stats": ("leitung", "/stats"),
    "join": (None, "/join/an-invitation-link"),
}
# Both catalogues (de, en: ~80 KB together) load on every page: the terminal speaks both at
# once and the language switch needs no round trip. The counsellor's page, the largest with
# requests, rooms and bookings, is about 205 KB.
PAGE_BUDGET_BYTES = 250_000


def fill_login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill(password)
    page.get_by_role("button", name="Anmelden").click()


class TestLogin:
    @pytest.mark.parametrize(("username", "landing"), LANDING.items())
    def test_each_role_lands_on_its_page(self, open_page, server, username, landing):
        """After logging in through the form each role sees its own page and its name."""
        page = open_page(path="/")
        fill_login(page, username)
        expect(page).to_have_url(server.url + landing)
        expect(page.locator("#who")).not_to_be_empty()
        page.goto("/")
        expect(page).to_have_url(server.url + landing)

    def test_wrong_password_is_told_plainly(self, open_page):
        """A wrong password shows one clear message and keeps the user on the login page."""
        page = open_page(path="/")
        fill_login(page, "berater.jobcenter", "not-the-password")
        expect(page.get_by_role("alert")).to_have_text("Benutzername oder Passwort ist falsch.")

    def test_pages_send_strangers_to_login(self, open_page, server):
        """A role page opened without a login, or by the wrong role, leads elsewhere."""
        page = open_page(path="/finance")
        expect(page).to_have_url(server.url + "/")
        page = open_page("olena", "/admin")
        expect(page).to_have_url(server.url + "/interpreter")

    @pytest.mark.parametrize("username", ["berater.caritas", "finanzen", "admin", "dmytro"])
    def test_logout_everywhere(self, open_page, server, username):
        """The log-out button on every page ends the session: back at login, pages closed."""
        page = open_page(username)
        page.get_by_role("button", name="Abmelden").click()
        expect(page).to_have_url(server.url + "/")
        page.goto(LANDING.get(username, "/interpreter"))
        expect(page).to_have_url(server.url + "/")


class TestSecurity:
    @pytest.mark.parametrize("name", PAGES)
    def test_page_is_light_and_loads_only_from_its_origin(self, open_page, server, name):
        """Each page works under its CSP, requests only its own origin, and stays < 200 KB."""
        username, path = PAGES[name]
        page = open_page(username)
        requests: list[str] = []
        sizes: dict[str, int] = {}
        violations: list[str] = []

        def on_response(response: Any) -> None:
            if response.request.resource_type in ("document", "script", "stylesheet"):
                sizes[response.url] = len(response.body())

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                violations.append(message.text)

        page.on("request", lambda r: requests.append(r.url))
        page.on("response", on_response)
        page.on("console", on_console)
        response = page.goto(path)
        page.wait_for_load_state("networkidle")
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"]
        assert violations == []
        foreign = [u for u in requests if not u.startswith((server.url, "data:", "blob:"))]
        assert foreign == []
        assert sum(sizes.values()) < PAGE_BUDGET_BYTES, sizes
        assert any(u.endswith(".js") for u in sizes)


class TestLanguage:
    def test_english_is_chosen_and_remembered(self, open_page, server):
        """Switching to English changes the words at once and survives reload and login."""
        page = open_page(path="/")
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
        page.get_by_label("Sprache der Oberfläche").select_option("en")
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()
        expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        page.get_by_label("Username").fill("berater.jobcenter")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Request interpreter")).to_be_visible()
        page.get_by_label("Interface language").select_option("de")
        expect(page.get_by_role("heading", name="Dolmetscher*in anfordern")).to_be_visible()


class TestAccessibility:
    @pytest.mark.parametrize("locale", ["de", "en"])
    @pytest.mark.parametrize("name", PAGES)
    def test_no_serious_violations_and_a_screenshot(self, open_page, name, locale):
        """axe-core finds nothing serious or critical; the screenshot is kept for people."""
        username, path = PAGES[name]
        # axe is injected as an inline script, which our own CSP rightly forbids.
        page = open_page(username, path, locale=locale, bypass_csp=True)
        page.wait_for_load_state("networkidle")
        expect(page.locator("html")).to_have_attribute("lang", locale)
        assert run_axe(page) == []
        screenshot(page, f"{name}-{locale}")

    def test_counsellor_can_work_by_keyboard(self, open_page):
        """Tab reaches the search field first after the header, with a visible focus."""
        page = open_page("berater.jobcenter", "/counsellor")
        expect(page.get_by_role("searchbox", name="Sprache suchen")).to_be_focused()
        page.keyboard.press("Shift+Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"


class TestReconnect:
    def test_interpreter_page_reconnects_after_server_restart(self, open_page, server: TolkServer):
        """When the server goes away the page says so, and reconnects by itself."""
        page = open_page("olena", "/interpreter")
        conn = page.locator("#conn")
        expect(conn).to_have_attribute("data-state", "open")
        server.restart()
        expect(conn).to_have_attribute("data-state", "open", timeout=30_000)
        expect(conn).to_have_text("Verbindung steht")

    def test_reconnecting_is_shown_while_the_server_is_away(self, open_page, server: TolkServer):
        """While the server is down the header says the connection is being restored."""
        page = open_page("dmytro", "/interpreter")
        conn = page.locator("#conn")
        expect(conn).to_have_attribute("data-state", "open")
        server.stop()
        try:
            expect(conn).to_have_attribute("data-state", "reconnecting")
            expect(conn).to_contain_text("wird wiederhergestellt")
        finally:
            server.start()
        expect(conn).to_have_attribute("data-state", "open", timeout=30_000)

    def test_session_ended_elsewhere_returns_to_login(self, open_page, server):
        """A session ended from outside (log out by API) closes the socket; the page says so."""
        page = open_page("layla", "/interpreter")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        page.context.request.delete("/api/session", headers={"Origin": server.url})
        expect(page).to_have_url(server.url + "/?loggedout=1")
        expect(page.get_by_role("alert")).to_contain_text("abgemeldet")


# Records the page's peer connections, so that a test can read what the browser decoded.
RECORD_PEERS = """
window.__peers = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) { super(...args); window.__peers.push(this); }
};
"""
ECHO_FRAMES_DECODED = """async () => {
  const pc = window.__peers.at(-1);
  if (!pc || pc.connectionState === "closed") return -1;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded ?? 0;
  });
  return frames;
}"""


class TestPrecallCheck:
    def test_the_echo_shows_the_camera_until_the_check_ends(self, open_page, server):
        """After the verdicts the server's echo keeps playing (frames decoded); "Test beenden"
        ends it, and "Zurück" leads to the page the check was opened from."""
        page = open_page("berater.sozialamt", "/counsellor")
        page.add_init_script(RECORD_PEERS)
        page.get_by_role("link", name="Kamera und Verbindung testen").click()
        expect(page).to_have_url(server.url + "/check")
        page.get_by_role("button", name="Test starten").click()
        verdicts = page.locator("#verdicts")
        expect(verdicts.locator('[data-kind="camera"]')).to_have_text("Kamera: funktioniert.")
        expect(verdicts.locator('[data-kind="network"]')).to_contain_text(
            "Verbindung: gut", timeout=40_000
        )
        expect(verdicts.locator('[data-kind="microphone"]')).to_be_visible(timeout=10_000)
        expect(page.locator("#status")).to_contain_text("kommt weiter vom Server zurück")
        assert page.evaluate("document.querySelector('#preview').videoWidth") > 0
        decoded = page.evaluate(ECHO_FRAMES_DECODED)
        assert decoded > 0
        # Still playing after the verdicts: more frames keep arriving and being decoded.
        page.wait_for_function(
            f"({ECHO_FRAMES_DECODED})().then((n) => n > {decoded + 20})", timeout=20_000
        )
        assert page.evaluate("document.querySelector('#echo').videoWidth") > 0
        page.get_by_role("button", name="Test beenden").click()
        expect(page.locator("#status")).to_have_text("Test beendet.")
        assert page.evaluate(ECHO_FRAMES_DECODED) == -1
        assert page.evaluate("document.querySelector('#echo').srcObject") is None
        page.get_by_role("link", name="Zurück").click()
        expect(page).to_have_url(server.url + "/counsellor")

    @pytest.mark.parametrize(("username", "home"), [("olena", "/interpreter"), ("admin", "/admin")])
    def test_back_leads_home_when_opened_directly(self, open_page, server, username, home):
        """Opened by its address, the check's "Zurück" leads to the user's own page."""
        page = open_page(username, "/check")
        page.get_by_role("link", name="Zurück").click()
        expect(page).to_have_url(server.url + home)

    def test_camera_permission_denied_is_said_plainly(self, open_page, server):
        """A refused camera permission gives a message that says how to allow it."""
        page = open_page("berater.sozialamt", "/check", deny_media=True)
        page.get_by_role("button", name="Test starten").click()
        camera = page.locator('#verdicts [data-kind="camera"]')
        expect(camera).to_contain_text("nicht freigegeben")
        expect(camera).to_have_attribute("data-tone", "bad")


BAD_ROSTER = (
    "username,display_name,email,languages,gender,specializations,agency\n"
    "nadia,Nadia Haddad,nadia@example.org,ar,female,social,\n"
    "kemal,Kemal Y,,not a language!,robot,,\n"
)
GOOD_ROSTER = (
    "username;display_name;email;languages;gender;specializations;agency\n"
    "nadia;Nadia Haddad;nadia@example.org;ar ar-SY;female;social;\n"
    "kemal;Kemal Yilmaz;;tr ku;male;;Sprachmittler e.V.\n"
)


class TestAdmin:
    def test_csv_import_lists_the_rows_to_fix_then_imports(self, open_page):
        """A roster with bad rows is refused row by row; the corrected file is imported."""
        page = open_page("admin", "/admin")
        panel = page.locator("#panel-interpreters")
        upload = panel.get_by_label("CSV-Datei")
        upload.set_input_files(
            {"name": "roster.csv", "mimeType": "text/csv", "buffer": BAD_ROSTER.encode()}
        )
        panel.get_by_role("button", name="CSV importieren").click()
        expect(panel).to_contain_text("Der Import wurde nicht ausgeführt")
        problems = panel.locator("table").last.locator("tbody tr")
        expect(problems.first).to_be_visible()
        rows = problems.all_inner_texts()
        assert all(r.split("\t")[0].strip() == "3" for r in rows), rows
        assert any("languages" in r for r in rows), rows
        assert any("gender" in r for r in rows), rows
        # Said in the page's language, from the problem's code (the server's text is English).
        assert any("Sprachkürzel" in r or "eines von" in r for r in rows), rows
        assert not any("not a valid" in r or "or empty" in r for r in rows), rows
        expect(panel.locator('tr[data-user-id] td:has-text("Nadia Haddad")')).to_have_count(0)
        # Switching the language says the rows to fix again, in English.
        page.locator("#locale").select_option("en")
        expect(panel).to_contain_text("Nothing was imported. Please correct these rows:")
        expect(panel.locator("table").last.locator("th").first).to_have_text("Row")
        english = problems.all_inner_texts()
        assert any("is not a valid language tag" in r for r in english), english
        assert not any("Sprachkürzel" in r for r in english), english
        page.locator("#locale").select_option("de")
        expect(panel.locator("table").last.locator("th").first).to_have_text("Zeile")

        upload = panel.get_by_label("CSV-Datei")
        upload.set_input_files(
            {"name": "roster.csv", "mimeType": "text/csv", "buffer": GOOD_ROSTER.encode()}
        )
        panel.get_by_role("button", name="CSV importieren").click()
        expect(page.locator("#notice")).to_contain_text("Import: 2 neu", timeout=10_000)
        row = panel.locator("tr[data-user-id]", has_text="Kemal Yilmaz")
        expect(row).to_contain_text("Türkisch")
        expect(panel.locator("tr[data-user-id]", has_text="Nadia Haddad")).to_contain_text(
            "Arabisch"
        )

    def test_interpreters_have_numbers_and_counsellors_may_see_them_instead(self, open_page):
        """The roster lists each interpreter's number; the choice of name or number is
        saved and still chosen after a reload."""
        page = open_page("admin", "/admin")
        panel = page.locator("#panel-interpreters")
        olena = panel.locator("tr[data-user-id]", has_text="Olena Kovalenko")
        expect(olena.locator("td").first).to_have_text(re.compile(r"^\d+$"))
        expect(panel.locator("th").first).to_have_text("Nr.")
        choice = panel.locator("#shown-as")
        expect(choice.get_by_label("den Namen")).to_be_checked()
        choice.get_by_label("die Nummer").check()
        choice.get_by_role("button", name="Speichern").click()
        expect(page.locator("#notice")).to_contain_text("Gespeichert")
        try:
            page.reload()
            expect(panel.locator("#shown-as").get_by_label("die Nummer")).to_be_checked()
            page.locator("#locale").select_option("en")
            expect(panel.locator("#shown-as").get_by_label("the number")).to_be_checked()
        finally:
            answer = page.request.put(
                "/api/admin/settings",
                data={"interpreter_shown_as": "name"},
                headers={"Origin": page.url.split("/admin")[0]},
            )
            assert answer.ok, answer.text()

    def test_tariff_is_added_with_the_real_fields(self, open_page):
        """A tariff per started minute for Ukrainian is added and listed in plain words."""
        page = open_page("admin", "/admin")
        page.get_by_role("tab", name="Tarife").click()
        panel = page.locator("#panel-tariffs")
        panel.get_by_label("Name").fill("Ukrainisch 2027")
        panel.get_by_label("Sprachgruppe").fill("uk")
        panel.get_by_label("Preis je Einheit").fill("1,25")
        panel.get_by_label("Abrechnungseinheit").select_option(label="je angefangene Minute")
        panel.get_by_label("Gültig ab").fill("2027-01-01")
        panel.get_by_role("button", name="Hinzufügen").click()
        row = panel.locator("tr[data-tariff-id]", has_text="Ukrainisch 2027")
        expect(row).to_contain_text("Ukrainisch")
        expect(row).to_contain_text("1,25")
        expect(row).to_contain_text("je angefangene Minute")
        expect(row).to_contain_text("Standardtarif")

    def test_a_new_tariff_starts_today_in_the_offices_time_zone(self, open_page, server):
        """Half an hour after midnight in Dortmund, still yesterday in UTC, the form
        offers the new day."""
        page = open_page(timezone_id="Europe/Berlin")
        login_api(page.context, server.url, "admin")
        page.clock.set_fixed_time(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
        page.goto("/admin")
        page.get_by_role("tab", name="Tarife").click()
        expect(page.locator("#panel-tariffs").get_by_label("Gültig ab")).to_have_value("2027-01-01")

    def test_machine_account_token_is_shown_once_and_revoked(self, open_page):
        """A machine account is added, gets a read-only billing token shown once, which is
        listed without its value and revoked."""
        page = open_page("admin", "/admin")
        page.get_by_role("tab", name="Benutzer*innen").click()
        users = page.locator("#panel-users")
        users.get_by_label("Name", exact=True).fill("Export-Roboter")
        users.get_by_label("Benutzername").fill("export.robot")
        users.get_by_label("Rolle").select_option(label="Abrechnung")
        users.get_by_label("Maschinenkonto").check()
        users.get_by_role("button", name="Hinzufügen").click()
        expect(users.locator("tr[data-user-id]", has_text="export.robot")).to_contain_text(
            "Maschinenkonto"
        )
        page.get_by_role("tab", name="API-Tokens").click()
        panel = page.locator("#panel-tokens")
        panel.get_by_label("Konto").select_option(label="Export-Roboter (export.robot)")
        panel.get_by_label("Name").fill("Monatsexport")
        panel.get_by_label("Umfang").fill("billing:read")
        panel.get_by_role("button", name="Token ausstellen").click()
        shown = panel.locator(".token-value")
        expect(shown).to_contain_text("tolk_")
        row = panel.locator("tr[data-token-id]", has_text="Monatsexport")
        expect(row).to_contain_text("billing:read")
        expect(row).not_to_contain_text(shown.inner_text())
        screenshot(page, "admin-tokens-de")
        row.get_by_role("button", name="Widerrufen").click()
        expect(panel.locator("tr[data-token-id]", has_text="Monatsexport")).to_have_count(0)

    def test_security_log_shows_who_logged_in_from_where(self, open_page):
        """The security log lists the admin's own login with the address it came from."""
        page = open_page("admin", "/admin")
        page.get_by_role("tab", name="Sicherheitsprotokoll").click()
        panel = page.locator("#panel-audit")
        panel.get_by_label("Ereignis").select_option(label="Anmeldung")
        panel.get_by_label("Wer").fill("admin")
        panel.get_by_role("button", name="Anzeigen").click()
        row = panel.locator("tr[data-event-id]").first
        expect(row).to_contain_text("Anmeldung")
        expect(row).to_contain_text("admin (angemeldet)")
        expect(row).to_contain_text("127.0.0.1")
        screenshot(page, "admin-audit-de")


class TestFinance:
    @pytest.mark.parametrize(
        ("username", "says"),
        [
            ("finanzen", "Sie sehen die Nutzung aller Organisationen."),
            ("finanzen.jobcenter", "Sie sehen die Nutzung von: Jobcenter Dortmund."),
        ],
    )
    def test_the_page_says_whose_usage_it_shows(self, open_page, username, says):
        """The centre's finance office sees every organisation; the Jobcenter's its own."""
        page = open_page(username, "/finance")
        expect(page.locator("#scope")).to_contain_text(says)

    def test_admin_grants_the_jobcenter_finance_the_city(self, open_page):
        """The admin grants an organisation on the organisations tab; the finance page of
        the Jobcenter's finance user then names it, until the grant is withdrawn."""
        admin = open_page("admin", "/admin")
        admin.get_by_role("tab", name="Organisationen").click()
        panel = admin.locator("#panel-organizations")
        panel.get_by_label("Abrechnung (Person)").select_option(
            label="Petra Lange (finanzen.jobcenter)"
        )
        panel.get_by_label("sieht auch").select_option(label="Stadt Dortmund – Sozialamt")
        panel.get_by_role("button", name="Freigeben").click()
        row = panel.locator("tr[data-grant-id]", has_text="finanzen.jobcenter")
        expect(row).to_contain_text("Stadt Dortmund – Sozialamt")
        finance = open_page("finanzen.jobcenter", "/finance")
        expect(finance.locator("#scope")).to_contain_text(
            "Jobcenter Dortmund, Stadt Dortmund – Sozialamt"
        )
        row.get_by_role("button", name="Freigabe entziehen").click()
        expect(row).to_have_count(0)
        finance.reload()
        expect(finance.locator("#scope")).to_contain_text("von: Jobcenter Dortmund.")
