"""Booked appointments in two browsers: a counsellor books an interpreter for a time, an
interpreter whose page is open sees it arrive and claims it, and both see the claim."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, login_api, run_axe, screenshot, serving

pytestmark = pytest.mark.browser

BERLIN = ZoneInfo("Europe/Berlin")


class TestBookings:
    @pytest.mark.timeout(180)
    def test_counsellor_books_interpreter_claims_both_see_it(self, open_page):
        """Caritas books Ukrainian in three days at 13:17; Dmytro's open page shows it
        among the open appointments at once, he takes it, and both lists show it taken
        (the counsellor with his name and a notice)."""
        day = (datetime.now(BERLIN) + timedelta(days=3)).date()
        interpreter = open_page("dmytro", "/interpreter", bypass_csp=True)
        expect(interpreter.locator("#conn")).to_have_attribute("data-state", "open")
        counsellor = open_page("berater.caritas", "/counsellor", bypass_csp=True)
        expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")

        form = counsellor.locator("#booking-form")
        expect(form.locator("#booking-language option[value='uk']")).to_have_count(1)
        form.get_by_label("Sprache", exact=True).select_option("uk")
        form.get_by_label("Datum").fill(day.isoformat())
        form.get_by_label("Uhrzeit").fill("13:17")
        form.get_by_label("Dauer").select_option("90")
        form.get_by_role("button", name="Termin buchen").click()
        expect(counsellor.locator("#bookings-notice")).to_contain_text("Gebucht")
        mine = counsellor.locator("#booking-list li", has_text="13:17")
        expect(mine).to_contain_text("Ukrainisch")
        expect(mine).to_contain_text("offen")
        expect(mine).to_contain_text("noch keine Dolmetscher*in")

        offered = interpreter.locator("#open-bookings li", has_text="13:17")
        expect(offered).to_contain_text("Caritas Dortmund")
        expect(offered).to_contain_text("90 Min.")
        offered.get_by_role("button", name="Übernehmen").click()
        expect(offered).to_have_count(0)
        taken = interpreter.locator("#booking-list li", has_text="13:17")
        expect(taken).to_contain_text("besetzt")
        expect(taken.get_by_role("button", name="Zurückgeben")).to_be_visible()

        expect(mine).to_contain_text("besetzt")
        expect(mine).to_contain_text("Dmytro Shevchenko")
        expect(counsellor.locator("#bookings-notice")).to_contain_text("ist besetzt")
        # Starting it days early is refused in the page's words.
        mine.get_by_role("button", name="Gespräch beginnen").click()
        expect(counsellor.locator("#notice")).to_contain_text("erst kurz vor dem Termin")

        for page, name in ((counsellor, "counsellor"), (interpreter, "interpreter")):
            assert run_axe(page) == [], name
            page.locator("#bookings").scroll_into_view_if_needed()
            screenshot(page, f"bookings-{name}")

    def test_the_admin_lists_unclaimed_bookings(self, open_page):
        """The admin's tab "Unbesetzte Termine" opens and says whether any is unclaimed."""
        admin = open_page("admin", "/admin", bypass_csp=True)
        admin.get_by_role("tab", name="Unbesetzte Termine").click()
        panel = admin.locator("#panel-bookings")
        expect(panel).to_be_visible()
        expect(panel.get_by_role("button", name="Aktualisieren")).to_be_visible()
        expect(panel.locator("#unclaimed-bookings")).to_be_attached()
        assert run_axe(admin) == []


@pytest.fixture
def early_deadlines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TolkServer]:
    """A server of its own that reminds of bookings and escalates them ten days ahead, so
    that a booking made for the day after tomorrow is reminded of and escalated at once."""
    yield from serving(
        tmp_path_factory.mktemp("tolk-early-deadlines"),
        TOLK_BOOKING_REMINDERS_S="[864000]",
        TOLK_BOOKING_ESCALATE_BEFORE_S="864000",
    )


class TestDeadlinesOnThePages:
    @pytest.mark.timeout(180)
    def test_reminder_and_escalation_show_on_the_pages(self, browser, early_deadlines):
        """The counsellor's page shows the reminder and the escalation as notices (they come
        in the same second or two, in either order, and neither hides the other) and the
        booking as still unclaimed; the admin finds it under "Unbesetzte Termine"."""
        day = (datetime.now(BERLIN) + timedelta(days=2)).date()
        pages: list[Any] = []
        for username, path in (("berater.caritas", "/counsellor"), ("admin", "/admin")):
            context = browser.new_context(base_url=early_deadlines.url)
            login_api(context, early_deadlines.url, username)
            pages.append(context.new_page())
            pages[-1].goto(path)
        counsellor, admin = pages
        try:
            expect(counsellor.locator("#conn")).to_have_attribute("data-state", "open")
            form = counsellor.locator("#booking-form")
            expect(form.locator("#booking-language option[value='uk']")).to_have_count(1)
            form.get_by_label("Sprache", exact=True).select_option("uk")
            form.get_by_label("Datum").fill(day.isoformat())
            form.get_by_label("Uhrzeit").fill("09:30")
            form.get_by_role("button", name="Termin buchen").click()
            notice = counsellor.locator("#bookings-notice")
            expect(notice).to_contain_text("noch ohne Dolmetscher*in", timeout=15_000)
            expect(notice).to_contain_text("die Verwaltung ist informiert")
            mine = counsellor.locator("#booking-list li", has_text="09:30")
            expect(mine).to_contain_text("Noch unbesetzt")

            admin.get_by_role("tab", name="Unbesetzte Termine").click()
            admin.get_by_role("button", name="Aktualisieren").click()
            listed = admin.locator("#unclaimed-bookings li", has_text="09:30")
            expect(listed).to_contain_text("Caritas Dortmund")
            expect(listed).to_contain_text("Ukrainisch")
        finally:
            for page in pages:
                page.context.close()
