"""The statistics page in real Chromium with the demo's four weeks of history: figures,
charts with text alternatives, the live strip following presence, screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, run_axe, screenshot

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1366, 900), "tablet": (768, 1024)}


class TestStatsPage:
    @pytest.mark.parametrize("locale", ["de", "en"])
    def test_figures_render_accessibly_at_desktop_and_tablet_size(self, open_page, locale):
        """Languages, charts, heat maps and interpreters show the history; every chart is
        an image with a text alternative; axe-core finds nothing serious at either size."""
        page = open_page("leitung", "/stats", locale=locale, bypass_csp=True)
        expect(page.locator("#languages tbody tr").first).to_be_visible()
        expect(page.locator("#interpreters tbody tr").first).to_be_visible()
        expect(page.locator("#agencies tbody tr")).to_have_count(1)
        for chart in ("#chart-wait", "#chart-answered", "#heat-demand", "#heat-unanswered"):
            image = page.locator(f"{chart} svg")
            expect(image).to_have_attribute("role", "img")
            assert len(image.get_attribute("aria-label") or "") > 40, chart
        ukrainian = "Ukrainisch" if locale == "de" else "Ukrainian"
        expect(page.locator("#languages")).to_contain_text(ukrainian)
        expect(page.locator("#live-calls")).not_to_be_empty()
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            assert run_axe(page) == [], size
            screenshot(page, f"stats-{size}-{locale}")

    def test_the_table_view_of_the_heat_map_opens(self, open_page):
        """'Als Tabelle' shows the week grid as a table of 7 days and 24 hours."""
        page = open_page("leitung", "/stats")
        page.get_by_text("Als Tabelle").click()
        rows = page.locator("#heat-table tbody tr")
        expect(rows).to_have_count(7)
        expect(rows.first.locator("td")).to_have_count(24)

    def test_the_live_strip_follows_an_interpreter_going_online(self, open_page, server):
        """When Tesfay (Tigrinya) switches to available, the strip shows it without reload."""
        page = open_page("leitung", "/stats")
        expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        expect(page.locator("#live-calls")).not_to_be_empty()
        tesfay = page.context.browser.new_context(base_url=server.url)
        try:
            tesfay.request.post("/api/session", data={"username": "tesfay", "password": PASSWORD})
            answer = tesfay.request.put(
                "/api/interpreters/me/status",
                data={"status": "available"},
                headers={"Origin": server.url},
            )
            assert answer.ok, answer.text()
            row = page.locator("#live tbody tr", has_text="Tigrinya")
            expect(row.locator("td").nth(2)).to_have_text("1", timeout=5_000)
        finally:
            tesfay.request.put(
                "/api/interpreters/me/status",
                data={"status": "offline"},
                headers={"Origin": server.url},
            )
            tesfay.close()

    def test_csv_downloads_are_offered_for_each_table(self, open_page):
        """The four downloads carry the period; in German the Excel dialect."""
        page = open_page("leitung", "/stats")
        expect(page.locator("#languages tbody tr").first).to_be_visible()
        href = page.locator("#dl-languages").get_attribute("href") or ""
        assert href.startswith("/api/stats/languages?from=")
        assert "format=csv" in href
        assert "dialect=de" in href
        answer = page.context.request.get(href)
        assert answer.ok
        assert answer.body().startswith(b"\xef\xbb\xbflanguage;requests;")

    def test_a_period_typed_while_the_page_starts_is_kept(self, open_page):
        """Someone who types a start day before the page has heard who they are gets the
        figures of that period, not the page's default written over it."""
        page = open_page("leitung", "/stats")
        held: list[object] = []
        page.route("**/api/me", lambda route: held.append(route))
        page.reload()
        page.locator("#from").fill("2026-01-05")
        assert len(held) == 1, "the page asks who is signed in before it shows anything"
        held[0].continue_()  # type: ignore[attr-defined]
        expect(page.locator("#status")).to_have_text("Zahlen geladen.")
        expect(page.locator("#from")).to_have_value("2026-01-05")
        href = page.locator("#dl-languages").get_attribute("href") or ""
        assert "from=2026-01-05" in href
