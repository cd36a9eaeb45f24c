"""The finance page by site: a month with calls asked at two sites of one organisation,
their totals per site, and the site filter narrowing the list and the downloads."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, run_axe, screenshot

BERLIN = ZoneInfo("Europe/Berlin")
ORG = "e2e-sites-org"
CENTRE, INFOPOINT = "e2e-site-centre", "e2e-site-infopoint"


def _month() -> datetime:
    """The first of the month before last, which no other browser test bills into."""
    now = datetime.now(BERLIN)
    year, month = (now.year, now.month - 2) if now.month > 2 else (now.year - 1, now.month + 10)
    return datetime(year, month, 1, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def by_site(server: TolkServer) -> str:
    """Three calls of an organisation of the test's own: two asked at Friedensplatz (10
    and 20 minutes), one at the Infopoint (5 minutes), a euro a minute; the month."""
    start = _month().astimezone(UTC) + timedelta(days=2, hours=8)
    stamp = lambda m: m.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731 - UTCDateTime's form
    with sqlite3.connect(server.folder / "tolk.db") as db:
        db.execute(
            "INSERT INTO organization (id, name, cost_center, created_at) VALUES (?,?,?,?)",
            (ORG, "Stadt Hamm – Integration", "HAM-1", stamp(start)),
        )
        db.executemany(
            "INSERT INTO site (id, organization_id, name, address, time_zone, active, created_at)"
            " VALUES (?, ?, ?, '', 'Europe/Berlin', 1, ?)",
            [
                (CENTRE, ORG, "Friedensplatz", stamp(start)),
                (INFOPOINT, ORG, "Infopoint", stamp(start)),
            ],
        )
        for i, (site, name, minutes) in enumerate(
            [
                (CENTRE, "Friedensplatz", 10),
                (INFOPOINT, "Infopoint", 5),
                (CENTRE, "Friedensplatz", 20),
            ]
        ):
            at = start + timedelta(hours=i)
            db.execute(
                "INSERT INTO usage_record (call_id, connected_at, ended_at, duration_s,"
                " billable_s, amount_cents, currency, language, organization_id, organization,"
                " cost_center, counsellor_id, interpreter_id, interpreter, tariff_id, tariff,"
                " end_reason, site_id, site) VALUES (?,?,?,?,?,?,'EUR','ar',?,"
                "'Stadt Hamm – Integration','HAM-1','c1','i1','Layla Haddad','t1','Standard',"
                "'hangup',?,?)",
                (
                    f"e2e-site-call-{i}",
                    stamp(at),
                    stamp(at + timedelta(minutes=minutes)),
                    minutes * 60,
                    minutes * 60,
                    minutes * 100,
                    ORG,
                    site,
                    name,
                ),
            )
    return f"{_month():%Y-%m}"


class TestFinanceBySite:
    def test_totals_per_site_and_the_site_filter(self, open_page, by_site):
        """The month shows Friedensplatz's 30 minutes and the Infopoint's 5 per site;
        picking the Infopoint leaves its one call, in the list and in the download."""
        page = open_page("finanzen", "/finance")
        page.locator("#month").fill(by_site)
        page.locator("#month").dispatch_event("change")
        centre = page.locator(f'#by-site tr[data-key="{CENTRE}"]')
        expect(centre).to_contain_text("Friedensplatz")
        expect(centre).to_contain_text("30 Min.")
        expect(centre).to_contain_text("30,00 €")
        expect(page.locator(f'#by-site tr[data-key="{INFOPOINT}"]')).to_contain_text("5,00 €")

        page.get_by_label("Standort", exact=True).select_option(label="Infopoint")
        rows = page.locator("#usage tr[data-call-id]")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Infopoint")
        expect(page.locator("#by-site tr[data-key]")).to_have_count(1)
        with page.expect_download(timeout=15_000) as download:
            page.get_by_role("link", name="Tabelle für Excel (CSV)").click()
        text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
        read = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
        assert [(r["Standort"], r["Gesprächs-ID"]) for r in read] == [
            ("Infopoint", "e2e-site-call-1")
        ]
        screenshot(page, "finance-by-site-de")

    def test_a_month_typed_while_the_page_starts_is_kept(self, open_page, by_site):
        """Someone who types a month before the page has heard who they are sees that
        month, not the page's default written over it."""
        page = open_page("finanzen", "/finance")
        held: list[Any] = []
        page.route("**/api/me", lambda route: held.append(route))
        page.reload()
        page.locator("#month").fill(by_site)
        page.locator("#month").dispatch_event("change")
        assert len(held) == 1, "the page asks who is signed in before it shows anything"
        held[0].continue_()
        expect(page.locator(f'#by-site tr[data-key="{CENTRE}"]')).to_contain_text("30,00 €")
        expect(page.locator("#month")).to_have_value(by_site)

    def test_the_page_with_sites_passes_axe(self, open_page, by_site):
        """With the site filter and the table per site: nothing serious or critical."""
        page = open_page("finanzen", "/finance", bypass_csp=True)
        page.locator("#month").fill(by_site)
        page.locator("#month").dispatch_event("change")
        expect(page.locator(f'#by-site tr[data-key="{CENTRE}"]')).to_be_visible()
        found: list[Any] = run_axe(page)
        assert found == []
