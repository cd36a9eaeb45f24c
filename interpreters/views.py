"""What the roster puts on the wire."""

from __future__ import annotations

from pydantic import BaseModel

from accounts.models import Role
from interpreters.models import Presence
from wire.objects import LanguageFigures


class LanguageView(BaseModel):
    tag: str
    name: str


class LanguageName(LanguageView):
    """A roster language by name only, as an invited client picks it (no figures)."""

    autonym: str
    """The language's name in itself, in its own script."""


class InterpreterView(BaseModel):
    """An interpreter as they see themselves (`GET /api/interpreters/me`)."""

    id: str
    display_name: str
    languages: list[LanguageView]
    status: Presence


class InterpreterDetail(InterpreterView):
    """An interpreter as admins see them."""

    username: str
    number: int | None
    """The short reference counsellors see instead of the name when the centre says so."""
    email: str | None
    gender: str | None
    agency: str | None
    specializations: list[str]
    active: bool
    user_active: bool
    pool_id: str
    """The pool: its tier decides whether they are asked first (in-house) or after."""
    role: Role
    """The user's role: `interpreter`, or another for a colleague with an in-house profile."""


class LanguageAvailability(LanguageFigures):
    """One language of the roster with live figures and its names (`GET /api/languages`)."""

    name: str
    autonym: str
    """The language's name in itself, in its own script, for the client to recognise."""
    search_names: list[str]
    """Further names it is found by: German, English, own name, codes, staff aliases."""
