"""The finance API: usage as JSON, CSV, German CSV and XLSX, summaries, access and audit."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlmodel import select

from accounts.models import AuditEvent, Role
from billing.cells import spreadsheet_text
from billing.export import ExportKind, UsageFilter, export_usage
from billing.models import ExportAudit, UsageRecord
from billing.rules import call_reference
from billing.tables import PEOPLE_COLUMNS
from billing.usage import record_usage
from infra.config import Settings
from infra.db import Database
from tests.factories import Factory, make_finance_office
from tests.waiting import eventually, until

INT_COLUMNS = {"duration_s", "billable_s", "amount_cents"}


async def seed(factory: Factory, db: Database) -> tuple[Any, ...]:
    """Two organisations, a default and an own tariff, four billed calls, one unconnected."""
    koeln = await factory.organization("Jobcenter Köln", cost_center="KST-4711")
    essen = await factory.organization("Caritas Essen; Süd", cost_center="C-02")
    await factory.tariff("Standard", unit_s=60, price_per_unit_cents=135)
    await factory.tariff(
        "Köln „Sonder“",
        organization_id=koeln.id,
        unit_s=900,
        minimum_s=900,
        price_per_unit_cents=1999,
    )
    # Anna asks at a site (its name with the German CSV's separator), Bert at none.
    anna = await factory.user(organization=koeln, site=await factory.site(koeln, "Mitte; Ost"))
    bert = await factory.user(organization=essen)
    juergen = await factory.interpreter(display_name="Jürgen Weiß")
    olga = await factory.interpreter(display_name="Olga Petrenko")
    moments = [
        (anna, juergen, "ar-SY", datetime(2026, 1, 5, 8, 0, tzinfo=UTC), 61),
        (bert, olga, "uk", datetime(2026, 1, 5, 8, 0, tzinfo=UTC), 3599),
        (bert, juergen, "ti", datetime(2026, 1, 31, 23, 30, tzinfo=UTC), 60),  # Feb in Berlin
        (anna, olga, "uk", datetime(2025, 12, 31, 23, 10, tzinfo=UTC), 1),  # Jan in Berlin
    ]
    calls = []
    for counsellor, interpreter, language, start, seconds in moments:
        call = await factory.call_between(
            counsellor, interpreter, language, start, start + timedelta(seconds=seconds)
        )
        calls.append(call)
    calls.append(
        await factory.call_between(anna, juergen, ended_at=datetime(2026, 1, 6, tzinfo=UTC))
    )
    for call in calls:
        async with db.write() as session:
            await record_usage(session, call)
    return koeln, essen, juergen, olga, calls


async def finance(factory: Factory) -> TestClient:
    return await factory.login(await make_finance_office(factory))


async def csv_both_ways(
    db: Database, usage: UsageFilter, now: datetime, batch_rows: int | None = None
) -> dict[bool, bytes]:
    """The machine CSV as the database builds it (True) and as Python builds it (False)."""
    written: dict[bool, bytes] = {}
    for fast in (True, False):
        chunks: list[bytes] = []

        async def keep(chunk: bytes, into: list[bytes] = chunks) -> None:
            into.append(chunk)

        kind = ExportKind("csv", fast_csv=fast)
        batches = {} if batch_rows is None else {"batch_rows": batch_rows}
        await export_usage(db, usage, kind, keep, user_id=None, now=now, **batches)
        written[fast] = b"".join(chunks)
    return written


async def fetch(client: TestClient, **params: str) -> ClientResponse:
    resp = await client.get("/api/usage", params=params)
    assert resp.status == 200, await resp.text()
    return resp


def in_spreadsheet(record: dict[str, Any]) -> dict[str, Any]:
    """A JSON record as the machine CSV shows it: text made inert (a generated id may start
    with `-`; billing.cells), no room an empty cell."""
    return {
        k: ""
        if v is None
        else spreadsheet_text(v)
        if isinstance(v, str)
        else ("true" if v else "false")
        if isinstance(v, bool)
        else v
        for k, v in record.items()
        # For people: JSON and the tables for people carry them.
        if k not in ("call_ref", "consultation_ref")
    }


def typed(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV or XLSX row with the JSON record's types, and the amount column checked."""
    record = {k: (int(v) if k in INT_COLUMNS else v) for k, v in row.items() if k != "amount"}
    return record


class TestFormats:
    async def test_json_lists_connected_calls_in_order(self, client, factory, db):
        """JSON holds one record per connected call of the period, ordered by connected_at."""
        koeln, _essen, juergen, _, calls = await seed(factory, db)
        await finance(factory)
        records = await (await fetch(client, **{"from": "2026-01-01", "to": "2026-02-01"})).json()
        same_moment = sorted([calls[0].id, calls[1].id])  # ties are ordered by call id
        assert [r["call_id"] for r in records] == [calls[3].id, *same_moment]
        first = next(r for r in records if r["call_id"] == calls[0].id)
        assert first == {
            "call_id": calls[0].id,
            "connected_at": "2026-01-05T08:00:00.000Z",
            "ended_at": "2026-01-05T08:01:01.000Z",
            "duration_s": 61,
            "billable_s": 900,
            "amount_cents": 1999,
            "currency": "EUR",
            "language": "ar-SY",
            "organization_id": koeln.id,
            "organization": "Jobcenter Köln",
            "cost_center": "KST-4711",
            "counsellor_id": calls[0].counsellor_id,
            "interpreter_id": juergen.id,
            "interpreter": "Jürgen Weiß",
            "tariff": "Köln „Sonder“",
            "end_reason": "hangup",
            "room_id": None,
            "site_id": calls[0].site_id,
            "site": "Mitte; Ost",
            "in_house": False,
            "call_ref": call_reference(calls[0].id),
            "consultation_ref": "",
        }
        assert calls[0].site_id is not None
        second = next(r for r in records if r["call_id"] == calls[1].id)
        assert (second["billable_s"], second["amount_cents"]) == (3600, 8100)

    async def test_csv_reads_back_as_the_json_records(self, client, factory, db):
        """CSV with a header row gives the JSON records, plus the amount in euros."""
        await seed(factory, db)
        await finance(factory)
        records = await (await fetch(client)).json()
        resp = await fetch(client, format="csv")
        assert resp.content_type == "text/csv"
        assert "attachment" in resp.headers["Content-Disposition"]
        body = await resp.read()
        assert not body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
        assert [typed(r) for r in rows] == [in_spreadsheet(r) for r in records]
        assert [r["amount"] for r in rows] == [
            f"{r['amount_cents'] // 100}.{r['amount_cents'] % 100:02d}" for r in records
        ]
        assert "19.99" in [r["amount"] for r in rows]

    async def test_german_csv_speaks_german_excel(self, client, factory, db):
        """dialect=de: BOM, `;`, German headers, Berlin times as dd.mm.yyyy hh:mm:ss,
        language names beside the tags, minutes and amounts with a decimal comma."""
        _koeln, _essen, _juergen, _olga, calls = await seed(factory, db)
        await finance(factory)
        resp = await fetch(client, format="csv", dialect="de")
        assert 'filename="tolk-nutzung-alle-excel.csv"' in resp.headers["Content-Disposition"]
        body = await resp.read()
        assert body.startswith(b"\xef\xbb\xbf")
        text = body.decode("utf-8-sig")
        assert '"Caritas Essen; Süd"' in text  # the separator inside a name is quoted
        rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
        assert list(rows[0]) == [c.de for c in PEOPLE_COLUMNS]
        # An id is made inert like any text (a generated one may start with `-`).
        first = next(r for r in rows if r["Gesprächs-ID"] == spreadsheet_text(calls[0].id))
        assert first["Gespräch"] == call_reference(calls[0].id)
        assert first["Beginn"] == "05.01.2026 09:00:00"  # 08:00 UTC is 09:00 in Berlin
        assert datetime.strptime(first["Ende"], "%d.%m.%Y %H:%M:%S") == datetime(
            2026, 1, 5, 9, 1, 1
        )
        assert (first["Dauer (Minuten)"], first["Abgerechnete Minuten"]) == ("1,02", "15,00")
        assert (first["Betrag"], first["Währung"]) == ("19,99", "EUR")
        assert (first["Sprache"], first["Sprachcode"]) == ("Arabisch (Syrien)", "ar-SY")
        assert (first["Organisation"], first["Kostenstelle"]) == ("Jobcenter Köln", "KST-4711")
        site_cell = spreadsheet_text(calls[0].site_id)
        assert (first["Standort"], first["Standort-ID"]) == ("Mitte; Ost", site_cell)
        assert '"Mitte; Ost"' in text
        assert (first["Dolmetscher*in"], first["Tarif"]) == ("Jürgen Weiß", "Köln „Sonder“")
        assert first["Ende des Gesprächs"] == "aufgelegt"

    async def test_xlsx_has_date_cells_numbers_and_a_summary(self, client, factory, db):
        """XLSX: German headers, real date cells in Berlin time, minutes and euros as
        numbers with formats, a frozen header row, and totals per organisation."""
        koeln, _essen, _j, _o, calls = await seed(factory, db)
        await finance(factory)
        resp = await fetch(client, format="xlsx", **{"from": "2026-01-01", "to": "2026-02-01"})
        assert resp.content_type.endswith("spreadsheetml.sheet")
        assert 'filename="tolk-nutzung-2026-01.xlsx"' in resp.headers["Content-Disposition"]
        workbook = load_workbook(io.BytesIO(await resp.read()))
        assert workbook.sheetnames == ["Zusammenfassung", "Gespräche", "Standorte"]
        sheet = workbook["Gespräche"]
        assert sheet.freeze_panes == "A2"
        header, *rows = [list(r) for r in sheet.iter_rows()]
        assert [c.value for c in header] == [c.de for c in PEOPLE_COLUMNS]
        read = [{h.value: c for h, c in zip(header, row, strict=True)} for row in rows]
        first = next(r for r in read if r["Gesprächs-ID"].value == spreadsheet_text(calls[0].id))
        assert first["Beginn"].value == datetime(2026, 1, 5, 9, 0)
        assert first["Beginn"].is_date
        assert float(first["Abgerechnete Minuten"].value) == 15.0
        assert float(first["Betrag"].value) == 19.99
        assert first["Betrag"].number_format == "#,##0.00"
        assert first["Sprache"].value == "Arabisch (Syrien)"
        summary = {r[0]: r for r in workbook["Zusammenfassung"].iter_rows(values_only=True)}
        assert summary["Jobcenter Köln"][1:] == ("KST-4711", 2, 30, 39.98, "EUR", 0)
        assert koeln.id not in summary

    async def test_english_xlsx_headers(self, client, factory, db):
        """lang=en: English sheet names and headers, and an English file name."""
        await seed(factory, db)
        await finance(factory)
        resp = await fetch(client, format="xlsx", lang="en", **{"from": "2026-01-03"})
        assert 'filename="tolk-usage-from-2026-01-03.xlsx"' in resp.headers["Content-Disposition"]
        workbook = load_workbook(io.BytesIO(await resp.read()))
        assert workbook.sheetnames == ["Summary", "Calls", "Sites"]
        header = next(workbook["Calls"].iter_rows(values_only=True))
        assert list(header) == [c.en for c in PEOPLE_COLUMNS]

    @pytest.mark.parametrize(
        ("params", "name"),
        [
            (
                {"format": "csv", "from": "2026-11-01", "to": "2026-12-01"},
                "tolk-nutzung-2026-11.csv",
            ),
            (
                {"format": "csv", "dialect": "de", "from": "2026-11-01", "to": "2026-12-01"},
                "tolk-nutzung-2026-11-excel.csv",
            ),
            (
                {"format": "xlsx", "from": "2026-11-03", "to": "2026-11-20"},
                "tolk-nutzung-2026-11-03_2026-11-19.xlsx",
            ),
            ({"format": "csv", "to": "2026-12-01"}, "tolk-nutzung-bis-2026-11-30.csv"),
        ],
    )
    async def test_file_names_carry_kind_and_period(self, client, factory, params, name):
        """The three downloads of a month get three names that say what and when."""
        await finance(factory)
        resp = await fetch(client, **params)
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{name}"'

    async def test_calls_without_a_tariff_are_counted_and_named(self, client, factory, db):
        """A call no tariff applies to is billed 0, counted in the summary and says
        "ohne Tarif" in the German CSV."""
        org = await factory.organization("Sozialamt Ohne", cost_center="S-0")
        counsellor = await factory.user(organization=org)
        interpreter = await factory.interpreter()
        start = datetime(2026, 2, 2, 9, tzinfo=UTC)
        call = await factory.call_between(
            counsellor, interpreter, "uk", start, start + timedelta(minutes=5)
        )
        async with db.write() as session:
            await record_usage(session, call)
        await finance(factory)
        groups = await (await client.get("/api/usage/summary")).json()
        assert [(g["name"], g["untariffed_calls"], g["amount_cents"]) for g in groups] == [
            ("Sozialamt Ohne", 1, 0)
        ]
        text = (await (await fetch(client, format="csv", dialect="de")).read()).decode("utf-8-sig")
        (row,) = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
        assert (row["Tarif"], row["Betrag"]) == ("ohne Tarif", "0,00")

    async def test_an_empty_period_gives_a_header_only(self, client, factory, db):
        """No calls: JSON `[]`, CSV just the header, XLSX just the header row."""
        await finance(factory)
        assert await (await fetch(client)).json() == []
        lines = (await (await fetch(client, format="csv")).text()).splitlines()
        assert len(lines) == 1
        workbook = load_workbook(io.BytesIO(await (await fetch(client, format="xlsx")).read()))
        assert workbook["Gespräche"].max_row == 1
        assert workbook["Zusammenfassung"].max_row == 1

    @pytest.mark.parametrize(
        "params",
        [
            {"format": "csv"},
            {"format": "csv", "dialect": "de"},
            {"format": "json"},
            {"format": "xlsx"},
        ],
    )
    async def test_re_exporting_a_closed_period_is_byte_identical(
        self, client, factory, db, params
    ):
        """The same period exported twice gives the same bytes."""
        await seed(factory, db)
        await finance(factory)
        period = {"from": "2026-01-01", "to": "2026-03-01", **params}
        first = await (await fetch(client, **period)).read()
        factory.clock.advance(3600)
        second = await (await fetch(client, **period)).read()
        if params["format"] == "xlsx":
            # The zip container stamps the save time; the sheet itself must not change.
            first_rows = list(load_workbook(io.BytesIO(first))["Gespräche"].values)
            second_rows = list(load_workbook(io.BytesIO(second))["Gespräche"].values)
            assert first_rows == second_rows
        else:
            assert first == second


class TestFilters:
    async def test_organisation_filter_returns_only_its_calls(self, client, factory, db):
        """organization=<id> returns only that organisation's records."""
        _koeln, essen, *_ = await seed(factory, db)
        await finance(factory)
        records = await (await fetch(client, organization=essen.id)).json()
        assert {r["organization_id"] for r in records} == {essen.id}
        assert len(records) == 2

    async def test_language_and_interpreter_filters(self, client, factory, db):
        """language (normalised) and interpreter narrow the records."""
        _, _, _juergen, olga, _calls = await seed(factory, db)
        await finance(factory)
        ukrainian = await (await fetch(client, language="UK")).json()
        assert {r["language"] for r in ukrainian} == {"uk"}
        assert len(ukrainian) == 2
        by_olga = await (await fetch(client, interpreter=olga.id)).json()
        assert {r["interpreter_id"] for r in by_olga} == {olga.id}

    async def test_dates_are_days_in_berlin(self, client, factory, db):
        """from=2026-02-01 starts at 23:00 UTC on 31 January, the start of the Berlin day."""
        *_, calls = await seed(factory, db)
        await finance(factory)
        february = await (await fetch(client, **{"from": "2026-02-01"})).json()
        assert [r["call_id"] for r in february] == [calls[2].id]
        exact = await (
            await fetch(client, **{"from": "2026-01-31T23:30:00Z", "to": "2026-01-31T23:30:01Z"})
        ).json()
        assert [r["call_id"] for r in exact] == [calls[2].id]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "yesterday"}, "from"),
            ({"to": "2026-13-01"}, "to"),
            ({"from": "2026-01-01T00:00:00"}, "from"),
            ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
            ({"format": "pdf"}, "format"),
            ({"language": "not a tag"}, "language"),
        ],
    )
    async def test_bad_parameters_are_422_naming_the_field(self, client, factory, params, field):
        """A malformed period, format or language is refused with the parameter named."""
        await finance(factory)
        resp = await client.get("/api/usage", params=params)
        assert resp.status == 422
        body = await resp.json()
        named = body["error"].get("field") or body["error"]["fields"][0]["field"]
        assert named == field


class TestSummary:
    async def test_by_organisation(self, client, factory, db):
        """Totals per organisation with its name."""
        koeln, essen, *_ = await seed(factory, db)
        await finance(factory)
        resp = await client.get("/api/usage/summary", params={"group_by": "organization"})
        groups = {g["key"]: g for g in await resp.json()}
        assert groups[koeln.id] == {
            "key": koeln.id,
            "name": "Jobcenter Köln",
            "calls": 2,
            "billable_s": 1800,
            "amount_cents": 3998,
            "currency": "EUR",
            "untariffed_calls": 0,
            "in_house_calls": 0,
            "in_house_billable_s": 0,
            "cost_center": "KST-4711",
        }
        assert groups[essen.id]["calls"] == 2
        assert groups[essen.id]["amount_cents"] == 8100 + 135

    async def test_by_month_uses_berlin_months(self, client, factory, db):
        """A call at 23:30 UTC on 31 January counts for February; one at 23:10 UTC on
        New Year's Eve counts for January."""
        await seed(factory, db)
        await finance(factory)
        resp = await client.get("/api/usage/summary", params={"group_by": "month"})
        months = {g["key"]: g["calls"] for g in await resp.json()}
        assert months == {"2026-01": 3, "2026-02": 1}

    async def test_by_language_and_interpreter(self, client, factory, db):
        """Language and interpreter groups add up to every call."""
        _, _, juergen, olga, _ = await seed(factory, db)
        await finance(factory)
        languages = await (
            await client.get("/api/usage/summary", params={"group_by": "language"})
        ).json()
        assert [(g["key"], g["calls"]) for g in languages] == [("ar-SY", 1), ("ti", 1), ("uk", 2)]
        interpreters = await (
            await client.get("/api/usage/summary", params={"group_by": "interpreter"})
        ).json()
        assert {g["key"]: g["name"] for g in interpreters} == {
            juergen.id: "Jürgen Weiß",
            olga.id: "Olga Petrenko",
        }

    async def test_empty_summary(self, client, factory):
        """No usage: an empty list for every grouping."""
        await finance(factory)
        for group_by in ("organization", "language", "interpreter", "month"):
            resp = await client.get("/api/usage/summary", params={"group_by": group_by})
            assert await resp.json() == []


class TestAccessAndAudit:
    @pytest.mark.parametrize("role", [Role.COUNSELLOR, Role.INTERPRETER])
    async def test_other_roles_get_403(self, client, factory, role):
        """Counsellors and interpreters cannot read usage."""
        await factory.login(await factory.user(role))
        for path in ("/api/usage", "/api/usage/summary"):
            assert (await client.get(path)).status == 403

    async def test_anonymous_gets_401(self, client):
        """Without a login the usage API answers 401."""
        for path in ("/api/usage", "/api/usage/summary"):
            assert (await client.get(path)).status == 401

    async def test_admin_and_bearer_token_may_export(self, client, factory, db):
        """Admins may export; finance scripts may use an API token."""
        await seed(factory, db)
        await factory.login(await factory.user(Role.ADMIN))
        assert len(await (await fetch(client)).json()) == 4
        other = await factory.new_client()
        token = await factory.token(await make_finance_office(factory))
        resp = await other.get("/api/usage", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200
        await other.close()

    async def test_every_export_is_audited(self, client, factory, db):
        """Each export leaves who, when, which filter and how many rows."""
        koeln, *_ = await seed(factory, db)
        clerk = await make_finance_office(factory)
        await factory.login(clerk)
        await (
            await fetch(client, **{"from": "2026-01-01", "to": "2026-02-01"}, organization=koeln.id)
        ).read()
        await (await fetch(client, format="csv", dialect="de")).read()
        async with db.read() as session:
            audits = list(
                (await session.exec(select(ExportAudit).order_by(ExportAudit.format))).all()
            )
        assert [(a.user_id, a.format, a.rows) for a in audits] == [
            (clerk.id, "csv-de", 4),
            (clerk.id, "json", 2),
        ]
        assert audits[1].at == factory.clock.now()
        assert koeln.id in audits[1].filters
        assert "2025-12-31T23:00:00" in audits[1].filters


async def many_records(factory: Factory, db: Database, count: int) -> None:
    """`count` billed one-minute calls of one organisation, written as usage records."""
    org = await factory.organization("Jobcenter Köln", cost_center="KST-4711")
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    async with db.write() as session:
        session.add_all(
            UsageRecord(
                call_id=f"call-{n:05d}",
                connected_at=start + timedelta(minutes=n),
                ended_at=start + timedelta(minutes=n + 1),
                duration_s=60,
                billable_s=60,
                amount_cents=135,
                currency="EUR",
                language="uk",
                organization_id=org.id,
                organization=org.name,
                cost_center=org.cost_center,
                counsellor_id="counsellor",
                interpreter_id="interpreter",
                interpreter="Olga Petrenko",
                tariff="Standard",
                end_reason="hangup",
            )
            for n in range(count)
        )


class TestBrokenOffExports:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # Small batches: the workbook is built in many steps, so there is time to leave.
        return settings.model_copy(update={"usage_export_batch_rows": 100})

    async def test_leaving_an_xlsx_export_leaves_no_temporary_file(
        self, client, factory, db, tmp_path, monkeypatch
    ):
        """A finance user who goes away while the XLSX file is being built leaves nothing
        in the server's temporary directory, and the export is audited as broken off."""
        temporary = tmp_path / "temporary"
        temporary.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(temporary))
        total = 2000
        await many_records(factory, db, total)
        await finance(factory)
        resp = await fetch(client, format="xlsx")
        # The summary's and the calls' sheets are on disk: the workbook is under way.
        await until(lambda: len(list(temporary.glob("openpyxl.*"))) >= 2)
        resp.close()

        async def audited() -> bool:
            async with db.read() as session:
                return (await session.exec(select(ExportAudit))).first() is not None

        await eventually(audited)
        async with db.read() as session:
            audit = (await session.exec(select(ExportAudit))).one()
        assert audit.rows < total
        assert list(temporary.iterdir()) == []


class TestCommandLine:
    # SQLite only: the command reads TOLK_DATABASE_URL, which cannot name a test's
    # PostgreSQL schema; the export code it runs is the one tested on both stacks above.
    @pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
    async def test_export_usage_writes_what_the_api_serves(self, client, factory, db, settings):
        """`tolk export-usage` prints the same German CSV as GET /api/usage, and is audited."""
        koeln, *_ = await seed(factory, db)
        await finance(factory)
        period = {"from": "2026-01-01", "to": "2026-02-01", "organization": koeln.id}
        served = await (await fetch(client, **period, format="csv", dialect="de")).read()
        env = {**os.environ, "TOLK_DATABASE_URL": settings.database_url, "TOLK_LOG_LEVEL": "error"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tolk",
            "export-usage",
            "--from=2026-01-01",
            "--to=2026-02-01",
            f"--organization={koeln.id}",
            "--format=csv",
            "--dialect=de",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        printed, errors = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, errors.decode()
        assert printed == served
        async with db.read() as session:
            audits = list((await session.exec(select(ExportAudit))).all())
        assert sorted((a.user_id is None, a.rows) for a in audits) == [(False, 2), (True, 2)]
        async with db.read() as session:
            events = list(
                await session.exec(select(AuditEvent).where(AuditEvent.action == "usage_exported"))
            )
        assert sorted(e.via for e in events) == ["cli", "session"]


class TestCsvQuoting:
    async def test_csv_is_exactly_what_csv_writer_writes(self, client, factory, db):
        """Names with quotes, both delimiters and line breaks come out as csv.writer quotes
        them, byte for byte; the plain Python path writes the very same bytes."""
        org = await factory.organization('Verein "Hoffnung", e.V.; Nord', cost_center="A\r\nB")
        await factory.tariff('Tarif "A"', unit_s=1, price_per_unit_cents=7)
        counsellor = await factory.user(organization=org)
        interpreter = await factory.interpreter(display_name="Zoë\nO'Brien")
        for n, language in enumerate(["uk", "ar-SY", "ti"]):
            start = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=n)
            call = await factory.call_between(
                counsellor, interpreter, language, start, start + timedelta(seconds=5000 + n)
            )
            async with db.write() as session:
                await record_usage(session, call)
        await finance(factory)
        records = await (await fetch(client)).json()
        served = await (await fetch(client, format="csv")).read()
        expected = io.StringIO()
        writer = csv.writer(expected, lineterminator="\r\n")
        names = list(in_spreadsheet(records[0]))
        writer.writerow([*names[:6], "amount", *names[6:]])
        for r in records:
            values = list(in_spreadsheet(r).values())
            cents = r["amount_cents"]
            writer.writerow([*values[:6], f"{cents // 100}.{cents % 100:02d}", *values[6:]])
        assert served == expected.getvalue().encode()
        assert records[0]["amount_cents"] == 35000
        assert records[0]["connected_at"] == "2026-03-01T12:00:00.123Z"
        plain: list[bytes] = []

        async def keep(chunk: bytes) -> None:
            plain.append(chunk)

        kind = ExportKind("csv", fast_csv=False)
        await export_usage(
            db, UsageFilter(), kind, keep, user_id=None, now=factory.clock.now(), batch_rows=2
        )
        assert b"".join(plain) == served
