"""Finance and admin as municipal staff use them: the month's totals and the downloads
opened as finance opens them, the printable statement, adding an interpreter in one step,
and an imported interpreter getting in through a one-time link."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.e2e.conftest import TolkServer, run_axe, screenshot

BERLIN = ZoneInfo("Europe/Berlin")
SIZES = {"desktop": (1366, 900), "tablet": (768, 1024)}


def _month_start() -> datetime:
    now = datetime.now(BERLIN)
    return datetime(now.year, now.month, 1, tzinfo=BERLIN)


@pytest.fixture(scope="module")
def usage(server: TolkServer) -> dict[str, Any]:
    """Two calls this month written as the server bills them: a job centre's under its
    tariff, and a long-named authority's without a tariff; and a counselling service's
    consultation with a hand-over (two segments) and a call that connected between them.
    The organisations are the test's own: the demo's history bills its organisations this
    month too."""
    start = _month_start().astimezone(UTC) + timedelta(days=1, hours=8)
    stamp = lambda m: m.strftime("%Y-%m-%d %H:%M:%S.%f")  # noqa: E731 - UTCDateTime's form
    with sqlite3.connect(server.folder / "tolk.db") as db:
        db.executemany(
            "INSERT INTO organization (id, name, cost_center, created_at) VALUES (?, ?, ?, ?)",
            [
                ("e2e-jobcenter-org", "Jobcenter Kreis Unna", "JC-UN", stamp(start)),
                (
                    "e2e-long-org",
                    "Ausländerbehörde Düsseldorf – Abteilung Einbürgerung",
                    "AB-7",
                    stamp(start),
                ),
                (CONSULTING, "Beratungsstelle Hamm", "BH-3", stamp(start)),
            ],
        )
        rows = [
            (
                "e2e-call-jobcenter",
                start,
                13 * 60 + 5,
                900,
                1800,
                "ti",
                "e2e-jobcenter-org",
                "Jobcenter Kreis Unna",
                "JC-UN",
                "tar1",
                "Jobcenter Rahmenvertrag",
            ),
            (
                "e2e-call-untariffed",
                start + timedelta(hours=2),
                125,
                125,
                0,
                "uk",
                "e2e-long-org",
                "Ausländerbehörde Düsseldorf – Abteilung Einbürgerung",
                "AB-7",
                None,
                "",
            ),
        ]
        for call_id, at, dur, billable, cents, lang, org_id, org, cc, tariff_id, tariff in rows:
            db.execute(
                "INSERT INTO usage_record (call_id, connected_at, ended_at, duration_s,"
                " billable_s, amount_cents, currency, language, organization_id, organization,"
                " cost_center, counsellor_id, interpreter_id, interpreter, tariff_id, tariff,"
                " end_reason) VALUES (?,?,?,?,?,?,'EUR',?,?,?,?,'c1','i1','Tesfay Gebremedhin',"
                "?,?,'hangup')",
                (
                    call_id,
                    stamp(at),
                    stamp(at + timedelta(seconds=dur)),
                    dur,
                    billable,
                    cents,
                    lang,
                    org_id,
                    org,
                    cc,
                    tariff_id,
                    tariff,
                ),
            )
        db.executemany(
            "INSERT INTO usage_record (call_id, connected_at, ended_at, duration_s,"
            " billable_s, amount_cents, currency, language, organization_id, organization,"
            " cost_center, counsellor_id, interpreter_id, interpreter, tariff_id, tariff,"
            " end_reason, room_id) VALUES (?,?,?,600,600,1000,'EUR','ar',?,"
            " 'Beratungsstelle Hamm','BH-3','c2','i2',?,'tar1','Beratung',?,?)",
            [
                (call_id, stamp(at), stamp(at + timedelta(minutes=10)), CONSULTING, who, why, room)
                for call_id, at, who, why, room in (
                    ("e2e-seg-1", start + timedelta(hours=3), "Jürgen Weiß", "handover", ROOM),
                    (
                        "e2e-between",
                        start + timedelta(hours=3, minutes=5),
                        "Olga P.",
                        "hangup",
                        None,
                    ),
                    (
                        "e2e-seg-2",
                        start + timedelta(hours=3, minutes=9),
                        "Aisha Haddad",
                        "hangup",
                        ROOM,
                    ),
                )
            ],
        )
    return {"jobcenter": "e2e-jobcenter-org", "start": start}


CONSULTING = "e2e-consulting-org"
ROOM = "e2e-room-hamm"


def _download(page: Any, name: str) -> tuple[str, bytes]:
    with page.expect_download(timeout=15_000) as download:
        page.get_by_role("link", name=name).click()
    return download.value.suggested_filename, Path(download.value.path()).read_bytes()


class TestFinance:
    def test_the_month_totals_warn_and_the_downloads_open(self, open_page, usage):
        """This month's totals per organisation with amounts, the call without a tariff
        warned about, and each download opened: headers, dates as dates, names, amounts."""
        page = open_page("finanzen", "/finance")
        month = f"{_month_start():%Y-%m}"
        expect(page.locator("#status")).to_contain_text("geladen")
        expect(page.locator("#untariffed")).to_contain_text("1 Gespräch ohne Tarif")
        expect(page.locator("#untariffed")).to_contain_text("Tarif anzulegen")
        jobcenter = page.locator(f'#by-org tr[data-key="{usage["jobcenter"]}"]')
        expect(jobcenter).to_contain_text("Jobcenter Kreis Unna")
        expect(jobcenter).to_contain_text("18,00 €")
        expect(jobcenter).to_contain_text("15 Min.")
        row = page.locator('#usage tr[data-call-id="e2e-call-untariffed"]')
        expect(row).to_contain_text("ohne Tarif")
        expect(row.locator("code")).to_have_text(re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}$"))
        # A bar of 0 minutes is no bar; the long name is there in full.
        expect(page.locator("#chart-org")).to_contain_text(
            "Ausländerbehörde Düsseldorf – Abteilung Einbürgerung"
        )

        name, body = _download(page, "Excel-Datei (XLSX)")
        assert name == f"tolk-nutzung-{month}.xlsx"
        book = load_workbook(io.BytesIO(body))
        assert book.sheetnames == ["Zusammenfassung", "Gespräche", "Standorte"]
        header, *calls = list(book["Gespräche"].iter_rows(values_only=True))
        read = [dict(zip(header, r, strict=True)) for r in calls]
        first = next(r for r in read if r["Gesprächs-ID"] == "e2e-call-jobcenter")
        assert isinstance(first["Beginn"], datetime)
        assert first["Beginn"] == usage["start"].astimezone(BERLIN).replace(tzinfo=None)
        assert (first["Organisation"], float(first["Betrag"])) == ("Jobcenter Kreis Unna", 18.0)
        assert first["Sprache"] == "Tigrinya"
        summary = {r[0]: r for r in book["Zusammenfassung"].iter_rows(values_only=True)}
        assert summary["Jobcenter Kreis Unna"][1:5] == ("JC-UN", 1, 15, 18)

        name, body = _download(page, "Tabelle für Excel (CSV)")
        assert name == f"tolk-nutzung-{month}-excel.csv"
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
        untariffed = next(r for r in rows if r["Gesprächs-ID"] == "e2e-call-untariffed")
        assert datetime.strptime(untariffed["Beginn"], "%d.%m.%Y %H:%M:%S")
        assert (untariffed["Tarif"], untariffed["Betrag"]) == ("ohne Tarif", "0,00")
        assert untariffed["Dauer (Minuten)"] == "2,08"
        assert untariffed["Sprache"] == "Ukrainisch"

        name, body = _download(page, "CSV für Programme")
        assert name == f"tolk-nutzung-{month}.csv"
        machine = list(csv.DictReader(io.StringIO(body.decode())))
        assert next(r for r in machine if r["call_id"] == "e2e-call-jobcenter")["amount"] == "18.00"

        with page.expect_popup() as popup:
            jobcenter.get_by_role("link", name="Abrechnung zum Drucken").click()
        statement = popup.value
        expect(statement.locator("#statement-facts")).to_contain_text("JC-UN")
        expect(statement.locator("table")).to_contain_text("Jobcenter Rahmenvertrag")
        expect(statement.locator("tfoot")).to_contain_text("18,00 €")
        screenshot(statement, "statement-de")
        statement.emulate_media(media="print")
        expect(statement.locator(".topbar")).to_be_hidden()
        screenshot(statement, "statement-print-de")

    @pytest.mark.parametrize("locale", ["de", "en"])
    @pytest.mark.parametrize("size", list(SIZES))
    def test_screenshots_fit_at_every_size(self, open_page, usage, locale, size):
        """Desktop and tablet, German and English: nothing is wider than the screen but
        the call table (which scrolls), and the chart's labels are in full."""
        page = open_page("finanzen", "/finance", locale=locale)
        width, height = SIZES[size]
        page.set_viewport_size({"width": width, "height": height})
        expect(page.locator("#usage tr[data-call-id]").first).to_be_visible()
        label = page.locator("#chart-org .bar-label").first
        box = label.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= width
        font = label.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert font >= 14
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width
        screenshot(page, f"finance-{size}-{locale}")

    def test_a_consultations_segments_stand_together(self, open_page, usage):
        """The finance page lists a consultation's two segments next to each other under
        one reference, before a call that connected between them; the statement groups
        them with the consultation's total, and passes axe."""
        page = open_page("finanzen", "/finance")
        segments = page.locator(f'#usage tr[data-room-id="{ROOM}"]')
        expect(segments).to_have_count(2)
        ids = page.locator("#usage tr[data-call-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.callId)"
        )
        ours = [i for i in ids if i in ("e2e-seg-1", "e2e-between", "e2e-seg-2")]
        assert ours == ["e2e-seg-1", "e2e-seg-2", "e2e-between"]
        refs = segments.locator("td:last-child code").all_inner_texts()
        assert len(set(refs)) == 1
        assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}", refs[0])

        path = f"/statement?organization={CONSULTING}&month={_month_start():%Y-%m}"
        statement = open_page("finanzen", path, bypass_csp=True)
        consultation = statement.locator(f'#statement-consultations tbody[data-room-id="{ROOM}"]')
        expect(consultation).to_contain_text(f"Beratung {refs[0]}")
        expect(consultation.locator("tr")).to_have_count(4)  # reference, 2 segments, total
        expect(consultation).to_contain_text("übergeben")
        total = consultation.locator("tr").last
        expect(total).to_contain_text("2 Dolmetschzeit(en)")
        expect(total).to_contain_text("20,00 €")
        assert run_axe(statement) == []
        screenshot(statement, "statement-consultation-de")


class TestAdmin:
    def test_a_half_wrong_interpreter_form_writes_nothing(self, open_page):
        """Without a language the form is refused and nobody is added; with Tigrinya
        picked by name the same username goes through and a link is shown once."""
        page = open_page("admin", "/admin")
        form = page.locator("#add-interpreter")
        form.get_by_label("Name", exact=True).fill("Selam Tesfaye")
        form.get_by_label("Benutzername").fill("selam")
        form.get_by_role("button", name="Dolmetscher*in anlegen").click()
        expect(page.locator("#notice")).to_contain_text("Bitte prüfen")
        panel = page.locator("#panel-interpreters")
        expect(panel.locator("tr[data-user-id]", has_text="Selam Tesfaye")).to_have_count(0)
        form.get_by_label("Sprache wählen").fill("Tigrinya")
        form.get_by_role("button", name="Sprache hinzufügen").click()
        expect(form.locator(".chips")).to_contain_text("Tigrinya (ti)")
        form.get_by_role("button", name="Dolmetscher*in anlegen").click()
        expect(panel.locator("tr[data-user-id]", has_text="Selam Tesfaye")).to_contain_text(
            "Tigrinya"
        )
        expect(panel.locator("#password-link")).to_contain_text("/set-password#")

    def test_an_imported_interpreter_sets_a_password_and_logs_in(self, open_page, browser):
        """Imported, given a link by the admin, the interpreter sets a password on the
        link's page and logs in with it."""
        page = open_page("admin", "/admin")
        panel = page.locator("#panel-interpreters")
        roster = "username;display_name;email;languages;gender;specializations;agency\n"
        roster += "hawre;Hawre Karim;;ckb;male;;Sprachmittler e.V.\n"
        panel.get_by_label("CSV-Datei").set_input_files(
            {"name": "roster.csv", "mimeType": "text/csv", "buffer": roster.encode()}
        )
        panel.get_by_role("button", name="CSV importieren").click()
        row = panel.locator("tr[data-user-id]", has_text="Hawre Karim")
        expect(row).to_contain_text("Sorani")
        row.get_by_role("button", name="Passwort-Link").click()
        link = panel.locator("#password-link .token-value")
        expect(link).to_contain_text("/set-password#")
        url = link.inner_text()
        for size in SIZES:
            page.set_viewport_size(dict(zip(("width", "height"), SIZES[size], strict=True)))
            screenshot(page, f"admin-{size}-de")
        page.locator("#locale").select_option("en")
        for size in SIZES:
            page.set_viewport_size(dict(zip(("width", "height"), SIZES[size], strict=True)))
            screenshot(page, f"admin-{size}-en")

        # Tokens are listed with name, owner, issue date, expiry and last use.
        page.locator("#locale").select_option("de")
        page.get_by_role("tab", name="API-Tokens").click()
        headers = page.locator("#panel-tokens table th").all_inner_texts()
        for name in ("Name", "Konto", "Ausgestellt am", "Gültig bis", "Zuletzt benutzt"):
            assert name in headers, headers

        person = open_page()
        person.goto(url)
        expect(person.locator("#set-password-who")).to_contain_text("Hawre Karim")
        person.get_by_label("Neues Passwort").fill("Zagros-Berge-2026")
        person.get_by_label("Passwort wiederholen").fill("Zagros-Berge-2026")
        person.get_by_role("button", name="Passwort speichern").click()
        expect(person.locator("#set-password-message")).to_contain_text("gespeichert")
        person.get_by_role("link", name="Zur Anmeldung").click()
        person.get_by_label("Benutzername").fill("hawre")
        person.get_by_label("Passwort").fill("Zagros-Berge-2026")
        person.get_by_role("button", name="Anmelden").click()
        expect(person).to_have_url(re.compile(r"/interpreter$"))


class TestAccessibility:
    @pytest.mark.parametrize("locale", ["de", "en"])
    def test_statement_and_set_password_pages_pass_axe(self, open_page, usage, locale):
        """The printable statement and the page a password link opens: nothing serious or
        critical for axe-core, in both languages."""
        path = f"/statement?organization={usage['jobcenter']}&month={_month_start():%Y-%m}"
        page = open_page("finanzen", path, locale=locale, bypass_csp=True)
        expect(page.locator("tfoot")).to_be_visible()
        assert run_axe(page) == []
        screenshot(page, f"statement-{locale}")
        link_page = open_page(path="/set-password#not-a-link", locale=locale, bypass_csp=True)
        expect(link_page.locator("#set-password-message")).not_to_be_empty()
        assert run_axe(link_page) == []
        screenshot(link_page, f"set-password-{locale}")
