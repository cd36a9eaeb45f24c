"""CSV import of a roster: every row checked first, then all written, or nothing.

Columns (a header row names them, in any order; `,` or `;` separated, UTF-8 with or
without BOM): username, display_name, email, languages (tags separated by spaces),
gender (female, male, diverse or empty), specializations (separated by spaces), and
optionally agency. Row numbers count the header as row 1, as spreadsheets do.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import service as accounts
from accounts.models import Role
from infra.errors import InvalidInput
from interpreters import service
from interpreters.languages import normalize_tag

REQUIRED_COLUMNS = ("username", "display_name", "email", "languages", "gender", "specializations")
OPTIONAL_COLUMNS = ("agency",)
MAX_ROWS = 5000
_USERNAME = re.compile(r"^[A-Za-z0-9._@-]{2,100}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UNUSABLE_PASSWORD = "!imported"  # noqa: S105 (not a password: a hash no password matches)
"""Imported interpreters cannot log in until an admin sets their password."""


class InvalidRows(InvalidInput):
    code = "invalid_rows"
    default_message = "The file has rows that cannot be imported; nothing was written."

    def __init__(self, message: str | None = None, *, rows: list[dict[str, Any]]) -> None:
        # `fields` names the columns at fault, `rows` says where; a file that cannot be
        # read at all is the body's fault.
        fields = [
            {"field": r["column"], "problem": f"row {r['row']}: {r['problem']}"} for r in rows
        ]
        super().__init__(message, fields=fields or None, rows=rows)


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    problem: str
    code: str = "invalid"
    """What is wrong, for the page to say in its own language."""
    value: str = ""
    """The value at fault (a tag, a row number), where the message names one."""


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class _Row:
    number: int
    username: str
    display_name: str
    email: str | None
    data: service.ProfileData


@dataclass
class _Checked:
    rows: list[_Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """The text of an uploaded file, which must be UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRows("The file is not UTF-8 text.", rows=[]) from None


def _parse(text: str) -> tuple[list[str], list[list[str]]]:
    text = text.removeprefix("\ufeff")
    if "\x00" in text:  # no roster holds one, and PostgreSQL could not store it
        raise InvalidRows("The file holds NUL characters; it is no CSV text.", rows=[])
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    # newline="": the csv module reads line ends itself (a lone \r included), as it asks.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [r for r in reader]
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        raise InvalidRows(f"The file cannot be read as CSV: {exc}.", rows=[]) from None
    if not rows:
        raise InvalidRows("The file is empty.", rows=[])
    header = [h.strip().lower().replace(" ", "_") for h in rows[0]]
    return header, rows[1:]


def check_rows(text: str, known_specializations: set[str]) -> _Checked:
    """Validate every row of the file; the problems name row, column and what is wrong."""
    header, body = _parse(text)
    index = _column_index(header)
    if len(body) > MAX_ROWS:
        raise InvalidRows(f"At most {MAX_ROWS} rows per file.", rows=[])
    checked = _Checked()
    seen: dict[str, int] = {}
    for offset, cells in enumerate(body):
        if any(c.strip() for c in cells):
            row = _RowCheck(offset + 2, index, cells, checked.problems)
            found = row.check(seen, known_specializations)
            if found is not None:
                checked.rows.append(found)
    return checked


def _column_index(header: list[str]) -> dict[str, int]:
    """Where each known column is; every required one must be there."""
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems = [RowProblem(1, c, "column is missing", "missing_column") for c in missing]
        raise InvalidRows(rows=[asdict(p) for p in problems])
    return {
        name: header.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in header
    }


class _RowCheck:
    """One row of the file, checked cell by cell; its problems go to a shared list."""

    def __init__(
        self, number: int, index: dict[str, int], cells: list[str], problems: list[RowProblem]
    ) -> None:
        self.number = number
        self._index = index
        self._cells = cells
        self._problems = problems

    def cell(self, name: str) -> str:
        i = self._index.get(name)
        return self._cells[i].strip() if i is not None and i < len(self._cells) else ""

    def bad(self, column: str, problem: str, code: str, value: str = "") -> None:
        self._problems.append(RowProblem(self.number, column, problem, code, value))

    def check(self, seen: dict[str, int], known_specializations: set[str]) -> _Row | None:
        """The row to import, or None when it has problems."""
        before = len(self._problems)
        username = self._username(seen)
        display = self.cell("display_name")
        if not display or len(display) > 200:
            self.bad("display_name", "required, at most 200 characters", "bad_name")
        email = self.cell("email") or None
        if email is not None and not _EMAIL.match(email):
            self.bad("email", "not an e-mail address", "bad_email")
        data = self._profile(known_specializations)
        if len(self._problems) > before:
            return None
        return _Row(self.number, username, display, email, data)

    def _username(self, seen: dict[str, int]) -> str:
        username = self.cell("username").lower()
        if not _USERNAME.match(username):
            self.bad("username", "2 to 100 letters, digits or . _ @ -", "bad_username")
        elif username in seen:
            self.bad(
                "username", f"already in row {seen[username]}", "repeated", str(seen[username])
            )
        else:
            seen[username] = self.number
        return username

    def _profile(self, known_specializations: set[str]) -> service.ProfileData:
        return service.ProfileData(
            languages=tuple(dict.fromkeys(self._languages())),
            gender=self._gender(),
            specializations=tuple(dict.fromkeys(self._specializations(known_specializations))),
            agency=self.cell("agency") or None,
        )

    def _languages(self) -> list[str]:
        languages: list[str] = []
        raw_languages = self.cell("languages").replace(",", " ").split()
        if not raw_languages:
            self.bad("languages", "at least one language tag", "no_language")
        for tag in raw_languages:
            try:
                languages.append(normalize_tag(tag))
            except InvalidInput:
                self.bad("languages", f"{tag!r} is not a valid language tag", "bad_language", tag)
        return languages

    def _gender(self) -> str | None:
        gender = self.cell("gender").lower() or None
        if gender is not None and gender not in service.GENDERS:
            self.bad(
                "gender",
                f"one of {', '.join(service.GENDERS)} or empty",
                "bad_gender",
                ", ".join(service.GENDERS),
            )
        return gender

    def _specializations(self, known: set[str]) -> list[str]:
        specs = [s.lower() for s in self.cell("specializations").replace(",", " ").split()]
        for spec in specs:
            if spec not in known:
                self.bad(
                    "specializations",
                    f"{spec!r} is not in the list of specialisations",
                    "unknown_specialization",
                    spec,
                )
        return specs


async def import_roster(
    session: AsyncSession, text: str, organization_id: str, now: datetime
) -> ImportResult:
    """Import a roster file: InvalidRows lists every bad row and nothing is written."""
    checked = check_rows(text, await service.known_specializations(session))
    for row in checked.rows:
        user = await accounts.find_user(session, row.username)
        if user is not None and user.role != Role.INTERPRETER:
            checked.problems.append(
                RowProblem(
                    row.number,
                    "username",
                    f"belongs to a {user.role.value}, not an interpreter",
                    "not_interpreter",
                    user.role.value,
                )
            )
    if checked.problems:
        raise InvalidRows(rows=[asdict(p) for p in sorted(checked.problems, key=lambda p: p.row)])
    result = ImportResult()
    for row in checked.rows:
        user = await accounts.find_user(session, row.username)
        created = user is None
        if user is None:
            user = await accounts.create_user(
                session,
                username=row.username,
                password_hash=UNUSABLE_PASSWORD,
                display_name=row.display_name,
                role=Role.INTERPRETER,
                organization_id=organization_id,
                email=row.email,
                now=now,
            )
        user_changed = (user.display_name, user.email) != (row.display_name, row.email)
        if user_changed:
            user.display_name, user.email = row.display_name, row.email
            session.add(user)
        _, profile_changed = await service.upsert_profile(session, user.id, row.data, now)
        if created:
            result.created += 1
        elif user_changed or profile_changed:
            result.updated += 1
        else:
            result.unchanged += 1
    return result
