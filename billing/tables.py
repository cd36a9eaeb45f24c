"""The columns of every export table, and each usage record rendered as a row in Python.

Two kinds of table:
- the machine CSV (`MACHINE_COLUMNS`): the documented, stable format for programs; UTC
  times in RFC 3339, amounts with a decimal point. `machine_line` is its plain Python
  rendering; billing.sqltext builds the same bytes in the database (the fast path).
- tables for people (`PEOPLE_COLUMNS`: the German Excel CSV and the XLSX): headers in the
  page's language, local times, language names beside the tags, minutes, short call and
  consultation references, and "no tariff" where no tariff applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from billing.cells import csv_line, spreadsheet_text
from billing.models import UsageRecord
from billing.rules import call_reference, consultation_reference
from interpreters.languages import display_name

Lang = Literal["de", "en"]

_T = UsageRecord.__table__.c  # type: ignore[attr-defined]

RECORD_COLUMNS = (
    "call_id",
    "connected_at",
    "ended_at",
    "duration_s",
    "billable_s",
    "amount_cents",
    "currency",
    "language",
    "organization_id",
    "organization",
    "cost_center",
    "counsellor_id",
    "interpreter_id",
    "interpreter",
    "tariff",
    "end_reason",
    "room_id",
    "site_id",
    "site",
    "in_house",
)
"""The fields of a usage record, in the contract's order (`room_id`: the consultation whose
interpreter segment it bills, None for an ordinary call; `site_id` and `site`: where the
counsellor asked, None and "" for no site; `in_house`: a staff call, interpreted by a
colleague of the in-house pool tier)."""
MACHINE_COLUMNS = (*RECORD_COLUMNS[:6], "amount", *RECORD_COLUMNS[6:])
"""Machine CSV columns: the record plus `amount`, the amount in currency units."""
_CENT = Decimal("0.01")


def raw_select() -> Any:
    """The typed columns a Python rendering needs: the record and its tariff id."""
    return select(*(getattr(_T, name) for name in RECORD_COLUMNS), _T.tariff_id)


def rfc3339(moment: datetime) -> str:
    """A UTC moment as RFC 3339 with milliseconds (truncated) and `Z`."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def cents_text(cents: int, mark: str) -> str:
    """Integer cents as a decimal with two places (`1250` -> `12.50`)."""
    return f"{cents // 100}{mark}{cents % 100:02d}"


def flag_text(value: bool) -> str:
    """A yes/no field of the machine CSV: `true` or `false` (as in JSON)."""
    return "true" if value else "false"


def machine_line(row: Any) -> bytes:
    """One machine CSV line of a record (see billing.sqltext for the same in SQL)."""
    cells: list[str] = []
    for name in MACHINE_COLUMNS:
        value = row.amount_cents if name == "amount" else getattr(row, name)
        if value is None:  # room_id of an ordinary call, site_id of no site
            cells.append("")
        elif name == "amount":
            cells.append(cents_text(value, "."))
        elif isinstance(value, bool):  # before int: a bool is an int too
            cells.append(flag_text(value))
        elif isinstance(value, datetime):
            cells.append(rfc3339(value))
        elif isinstance(value, int):
            cells.append(str(value))
        else:
            cells.append(spreadsheet_text(value))
    return csv_line(cells, ",").encode()


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a table for people: its key, its headers, and what its cells hold."""

    key: str
    de: str
    en: str
    kind: Literal["text", "time", "minutes", "amount"] = "text"


PEOPLE_COLUMNS = (
    Column("ref", "Gespräch", "Call"),
    Column("consultation", "Beratung", "Consultation"),
    Column("start", "Beginn", "Start", "time"),
    Column("end", "Ende", "End", "time"),
    Column("minutes", "Dauer (Minuten)", "Duration (minutes)", "minutes"),
    Column("billed_minutes", "Abgerechnete Minuten", "Billed minutes", "minutes"),
    Column("amount", "Betrag", "Amount", "amount"),
    Column("currency", "Währung", "Currency"),
    Column("language", "Sprache", "Language"),
    Column("language_tag", "Sprachcode", "Language code"),
    Column("organization", "Organisation", "Organisation"),
    Column("cost_center", "Kostenstelle", "Cost centre"),
    Column("site", "Standort", "Site"),
    Column("interpreter", "Dolmetscher*in", "Interpreter"),
    Column("tariff", "Tarif", "Tariff"),
    Column("in_house", "Im Haus", "In-house"),
    Column("ended_by", "Ende des Gesprächs", "How it ended"),
    Column("call_id", "Gesprächs-ID", "Call ID"),
    Column("organization_id", "Organisations-ID", "Organisation ID"),
    Column("counsellor_id", "Berater*in-ID", "Counsellor ID"),
    Column("interpreter_id", "Dolmetscher*in-ID", "Interpreter ID"),
    Column("room_id", "Beratungs-ID", "Consultation ID"),
    Column("site_id", "Standort-ID", "Site ID"),
)
"""The columns of the German Excel CSV and of the XLSX calls sheet."""

NO_TARIFF = {"de": "ohne Tarif", "en": "no tariff"}
"""What a table for people says where no tariff applied (the call was billed 0)."""
IN_HOUSE = {"de": "ja", "en": "yes"}
"""What a table for people says of a staff call (interpreted by a colleague in the house)."""
END_REASONS = {
    "hangup": {"de": "aufgelegt", "en": "hung up"},
    "lost": {"de": "Verbindung abgebrochen", "en": "connection lost"},
    "failed": {"de": "nicht zustande gekommen", "en": "failed"},
    "cancelled": {"de": "abgebrochen", "en": "cancelled"},
    "shutdown": {"de": "Server beendet", "en": "server shut down"},
    "handover": {"de": "übergeben", "en": "handed over"},
}


def headers(lang: Lang) -> list[str]:
    """The header row of a table for people."""
    return [getattr(column, lang) for column in PEOPLE_COLUMNS]


def minutes(seconds: int) -> Decimal:
    """Seconds as minutes with two decimals (`90` -> `1.50`)."""
    return (Decimal(seconds) / 60).quantize(_CENT)


def local_time(moment: datetime, zone: ZoneInfo) -> datetime:
    """A moment as the wall-clock time in `zone`, naive, as spreadsheets hold times."""
    return moment.astimezone(zone).replace(tzinfo=None)


class PeopleRows:
    """Records as rows of typed cells for people: local times, minutes, names."""

    def __init__(self, zone: ZoneInfo, lang: Lang) -> None:
        self.zone = zone
        self.lang: Lang = lang
        self._names: dict[str, str] = {}

    def column_name(self, key: str) -> str:
        """The header of one of PEOPLE_COLUMNS in the table's language."""
        column = next(c for c in PEOPLE_COLUMNS if c.key == key)
        return column.de if self.lang == "de" else column.en

    def language_name(self, tag: str) -> str:
        """The language's name in the table's language (cached: one export, few tags)."""
        if tag not in self._names:
            self._names[tag] = display_name(tag, self.lang)
        return self._names[tag]

    def values(self, row: Any) -> list[Any]:
        """One record's cells, in the order of PEOPLE_COLUMNS (text not yet made inert)."""
        reason = END_REASONS.get(row.end_reason)
        return [
            call_reference(row.call_id),
            consultation_reference(row.room_id),
            local_time(row.connected_at, self.zone),
            local_time(row.ended_at, self.zone),
            minutes(row.duration_s),
            minutes(row.billable_s),
            Decimal(row.amount_cents) / 100,
            row.currency,
            self.language_name(row.language),
            row.language,
            row.organization,
            row.cost_center,
            row.site,
            row.interpreter,
            row.tariff if row.tariff_id is not None else NO_TARIFF[self.lang],
            IN_HOUSE[self.lang] if row.in_house else "",
            reason[self.lang] if reason else row.end_reason,
            row.call_id,
            row.organization_id,
            row.counsellor_id,
            row.interpreter_id,
            row.room_id or "",
            row.site_id or "",
        ]


def excel_text(value: Any) -> str:
    """A typed cell as German Excel reads it from a CSV: `05.01.2026 09:00:00`, `1,50`."""
    if isinstance(value, datetime):
        return f"{value:%d.%m.%Y %H:%M:%S}"
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    return spreadsheet_text(str(value))


def german_csv_line(values: Sequence[Any]) -> bytes:
    """One line of the German Excel CSV (`;`-separated, decimal comma, local times)."""
    return csv_line((excel_text(v) for v in values), ";").encode()
