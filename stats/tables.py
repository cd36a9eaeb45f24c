"""Figures as CSV for the city's own reporting: the dialects of the usage export, every
text cell through the spreadsheet rule of billing.cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from billing.cells import spreadsheet_text
from billing.export import UTF8_BOM, Dialect


def _cell(value: Any, dialect: Dialect) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text.replace(".", ",") if dialect == "de" else text
    if isinstance(value, int):
        return str(value)
    return spreadsheet_text(str(value))


def csv_table(columns: Sequence[str], rows: Sequence[dict[str, Any]], dialect: Dialect) -> bytes:
    """A header line and one line per row (CRLF); `de`: semicolons, decimal comma and the
    byte order mark German Excel needs to read UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if dialect == "de" else ",", lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name), dialect) for name in columns])
    body = buffer.getvalue().encode()
    return UTF8_BOM + body if dialect == "de" else body
