"""The XLSX export: a summary sheet per organisation, the calls, and the totals per site,
for people.

openpyxl in write-only mode: rows go to a temporary file as they come, so a year of
records needs no more memory than a batch. Times are real date cells in local time,
minutes and money numbers with number formats, text always a string cell (never a
formula: billing.cells), and the header row stays put while scrolling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from billing.cells import spreadsheet_text
from billing.tables import PEOPLE_COLUMNS, Lang, PeopleRows, headers, minutes

Write = Callable[[bytes], Awaitable[None]]
T = TypeVar("T")

XLSX_MAX_ROWS = 1_048_576
"""Excel's row limit per sheet; longer exports continue on a further sheet."""
SHEETS = {
    "de": ("Zusammenfassung", "Gespräche", "Standorte"),
    "en": ("Summary", "Calls", "Sites"),
}
NO_SITE = {"de": "ohne Standort", "en": "no site"}
SUMMARY_HEADERS = {
    "de": (
        "Organisation",
        "Kostenstelle",
        "Gespräche",
        "Abgerechnete Minuten",
        "Betrag",
        "Währung",
        "Gespräche ohne Tarif",
    ),
    "en": (
        "Organisation",
        "Cost centre",
        "Calls",
        "Billed minutes",
        "Amount",
        "Currency",
        "Calls without a tariff",
    ),
}
# Format codes are stored in Excel's neutral notation; Excel shows them in its own locale
# (German Excel: 1.234,50 and 05.01.2026 09:00).
TIME_FORMAT = {"de": "dd.mm.yyyy hh:mm:ss", "en": "yyyy-mm-dd hh:mm:ss"}
NUMBER_FORMAT = "#,##0.00"
WIDTHS = {"text": 22, "time": 20, "minutes": 14, "amount": 14}
_FIGURE_KINDS = ("minutes", "minutes", "amount", "text", "minutes")
"""The kinds of the columns of `_figures`."""


def _figures(group: dict[str, Any]) -> tuple[Any, ...]:
    """A group's calls, billed minutes, amount, currency and calls without a tariff: how
    the summary and the sites sheets end each row."""
    return (
        group["calls"],
        minutes(group["billable_s"]),
        Decimal(group["amount_cents"]) / 100,
        group["currency"],
        group["untariffed_calls"],
    )


class _Book:
    """A write-only workbook of one export, typed cells made in one place."""

    def __init__(self, lang: Lang, rows: PeopleRows) -> None:
        # Imported here: only XLSX exports pay for openpyxl.
        from openpyxl import Workbook

        self.workbook = Workbook(write_only=True)
        self.lang: Lang = lang
        self.rows = rows
        self.sheet: Any = None
        self.sheets = 0
        self.in_sheet = XLSX_MAX_ROWS

    def new_sheet(self, title: str, header: Sequence[str], kinds: Sequence[str]) -> Any:
        """A sheet with its widths, a frozen header row, and the header written."""
        from openpyxl.utils import get_column_letter

        sheet = self.workbook.create_sheet(title)
        for index, kind in enumerate(kinds, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = WIDTHS[kind]
        sheet.freeze_panes = "A2"
        sheet.append([self.cell(sheet, text) for text in header])
        return sheet

    def cell(self, sheet: Any, value: Any) -> Any:
        """A typed cell: text as a string cell (openpyxl would type `=...` as a formula),
        with the control characters XLSX cannot hold shown as spaces; times and numbers
        with their formats."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, TYPE_STRING

        if isinstance(value, str):
            shown = ILLEGAL_CHARACTERS_RE.sub(" ", spreadsheet_text(value))
            cell = WriteOnlyCell(sheet, shown)
            cell.data_type = TYPE_STRING
            return cell
        cell = WriteOnlyCell(sheet, value)
        if isinstance(value, datetime):
            cell.number_format = TIME_FORMAT[self.lang]
        elif isinstance(value, Decimal):
            cell.number_format = NUMBER_FORMAT
        return cell

    def totals(self, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A sheet of totals: per row its names (text), then a group's `_figures`."""
        kinds = ("text",) * (len(header) - len(_FIGURE_KINDS)) + _FIGURE_KINDS
        sheet = self.new_sheet(title, header, kinds)
        for values in rows:
            sheet.append([self.cell(sheet, v) for v in values])

    def summary(self, groups: Sequence[dict[str, Any]]) -> None:
        """The summary sheet: one row per organisation and currency."""
        rows = [
            (g.get("name") or g["key"], g.get("cost_center") or "", *_figures(g)) for g in groups
        ]
        self.totals(SHEETS[self.lang][0], SUMMARY_HEADERS[self.lang], rows)

    def sites(self, groups: Sequence[dict[str, Any]]) -> None:
        """The sites sheet: one row per site (the records of none as one) and currency."""
        header = (self.rows.column_name("site"), *SUMMARY_HEADERS[self.lang][2:])
        rows = [(g.get("name") or NO_SITE[self.lang], *_figures(g)) for g in groups]
        self.totals(SHEETS[self.lang][2], header, rows)

    def calls(self, batch: Sequence[Any]) -> None:
        """Append records to the calls sheet, opening a further one at Excel's limit."""
        kinds = [column.kind for column in PEOPLE_COLUMNS]
        for row in batch:
            if self.in_sheet >= XLSX_MAX_ROWS:
                self.sheets += 1
                title = SHEETS[self.lang][1] + (f" {self.sheets}" if self.sheets > 1 else "")
                self.sheet = self.new_sheet(title, headers(self.lang), kinds)
                self.in_sheet = 1
            values = self.rows.values(row)
            self.sheet.append([self.cell(self.sheet, v) for v in values])
            self.in_sheet += 1

    def discard(self) -> None:
        """Close and remove the sheets' temporary files; nothing to do once saved."""
        # openpyxl removes a write-only sheet's file only on save (or at exit), and holds
        # it open in two generators: the sheet's rows, inside its writer's stream, so the
        # rows are closed first. A save has closed both and removed the file already.
        for sheet in self.workbook.worksheets:
            writer = sheet._writer
            if writer is None:
                continue
            # A sheet an error broke off may fail to end its XML: it goes all the same.
            with contextlib.suppress(Exception):
                if sheet._rows is not None:
                    sheet._rows.close()
            with contextlib.suppress(Exception):
                writer.close()
            if os.path.exists(writer.out):
                writer.cleanup()


async def _in_thread(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` in a worker thread, which a cancelled caller waits out before it
    gives up: the thread cannot be stopped, and must not find its workbook or file closed
    under it."""
    running = asyncio.ensure_future(asyncio.to_thread(work, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({running})
        raise


async def write_xlsx(
    batches: AsyncIterator[Sequence[Any]],
    write: Write,
    rows: PeopleRows,
    summary: Sequence[dict[str, Any]],
    by_site: Sequence[dict[str, Any]] = (),
) -> None:
    """Write the workbook of an export: the summary, every record's row, then the totals
    per site."""
    book = _Book(rows.lang, rows)
    try:
        book.summary(summary)
        async for batch in batches:
            # openpyxl is synchronous and CPU-bound: keep it off the event loop.
            await _in_thread(book.calls, batch)
        if book.sheets == 0:
            kinds = [column.kind for column in PEOPLE_COLUMNS]
            book.new_sheet(SHEETS[rows.lang][1], headers(rows.lang), kinds)
        book.sites(by_site)
        # Write-only workbooks still need a file to zip into; stream it out afterwards.
        handle, path = tempfile.mkstemp(prefix="tolk-usage-", suffix=".xlsx")
        os.close(handle)
        try:
            await _in_thread(book.workbook.save, path)
            with open(path, "rb") as file:  # noqa: ASYNC230 - chunks are read off the loop
                while chunk := await _in_thread(file.read, 256 * 1024):
                    await write(chunk)
        finally:
            os.unlink(path)
    finally:
        # An export that broke off (an error, a cancelled request) never saves: without
        # this its sheets' files would stay in the temporary directory until a restart.
        book.discard()
