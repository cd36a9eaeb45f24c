"""Sites as an admin keeps them on the admin page: adding one (a made-up time zone refused
in words), renaming it, putting a new counsellor on it and moving them, deactivating it;
the tab passes axe-core in both languages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import run_axe, screenshot


class TestSites:
    def test_an_admin_adds_a_site_and_puts_a_counsellor_on_it(self, open_page):
        """Caritas gets a second site: refused with a made-up zone, added with a real one,
        renamed; a counsellor added there is moved back to the first site and the new site
        is deactivated."""
        page = open_page("admin", "/admin")
        page.get_by_role("tab", name="Standorte").click()
        panel = page.locator("#panel-sites")
        centre = panel.locator("tr[data-site-id]").filter(
            has=page.locator('input[value="MigraDo Friedensplatz"]')
        )
        expect(centre).to_contain_text("Stadt Dortmund – Sozialamt")
        form = panel.locator("form.card")
        form.get_by_label("Organisation").select_option(label="Caritas Dortmund")
        form.get_by_label("Name", exact=True).fill("Caritas Hörde")
        form.get_by_label("Adresse").fill("Hörder Bahnhofstraße 1, 44263 Dortmund")
        form.get_by_label("Zeitzone").fill("Europe/Dortmund")
        form.get_by_role("button", name="Standort hinzufügen").click()
        expect(page.locator("#notice")).to_contain_text("keine Zeitzone")
        expect(panel.locator('input[value="Caritas Hörde"]')).to_have_count(0)

        form.get_by_label("Zeitzone").fill("Europe/Berlin")
        form.get_by_role("button", name="Standort hinzufügen").click()
        expect(page.locator("#notice")).to_contain_text("Gespeichert")
        row = panel.locator("tr[data-site-id]").filter(
            has=page.locator('input[value="Caritas Hörde"]')
        )
        expect(row).to_contain_text("Caritas Dortmund")
        row.get_by_label("Name", exact=True).fill("Caritas Hörde (Beratung)")
        row.get_by_role("button", name="Speichern: Caritas Hörde (Caritas Dortmund)").click()
        expect(page.locator("#notice")).to_contain_text("Gespeichert")
        renamed = panel.locator("tr[data-site-id]").filter(
            has=page.locator('input[value="Caritas Hörde (Beratung)"]')
        )
        expect(renamed).to_have_count(1)

        page.get_by_role("tab", name="Benutzer").click()
        users = page.locator("#panel-users")
        add = users.locator("form.card")
        add.get_by_label("Name", exact=True).fill("Nora Weiß")
        add.get_by_label("Benutzername").fill("nora.weiss")
        add.get_by_label("Passwort", exact=True).fill("Hörder-Phoenixsee-2026")
        add.get_by_label("Organisation").select_option(label="Caritas Dortmund")
        add.get_by_label("Standort").select_option(
            label="Caritas Hörde (Beratung) (Caritas Dortmund)"
        )
        add.get_by_role("button", name="Hinzufügen").click()
        nora = users.locator("tr[data-user-id]", has_text="nora.weiss")
        choice = nora.get_by_label("Standort: Nora Weiß")
        expect(choice).to_have_value(renamed.get_attribute("data-site-id") or "")
        choice.select_option(label="Caritas Dortmund")
        expect(page.locator("#notice")).to_contain_text("Gespeichert")
        expect(nora.get_by_label("Standort: Nora Weiß").locator("option:checked")).to_have_text(
            "Caritas Dortmund"
        )

        page.get_by_role("tab", name="Standorte").click()
        renamed.get_by_role(
            "button", name="Deaktivieren: Caritas Hörde (Beratung) (Caritas Dortmund)"
        ).click()
        expect(renamed).to_contain_text("deaktiviert")
        page.get_by_role("tab", name="Benutzer").click()
        options = nora.get_by_label("Standort: Nora Weiß").locator("option").all_inner_texts()
        assert "Caritas Hörde (Beratung)" not in options

    @pytest.mark.parametrize("locale", ["de", "en"])
    def test_the_sites_tab_passes_axe(self, open_page, locale):
        """The sites tab: nothing serious or critical for axe-core, in both languages."""
        page = open_page("admin", "/admin", locale=locale, bypass_csp=True)
        page.get_by_role("tab", name="Standorte" if locale == "de" else "Sites").click()
        expect(page.locator("#panel-sites tr[data-site-id]").first).to_be_visible()
        assert run_axe(page) == []
        screenshot(page, f"admin-sites-{locale}")
