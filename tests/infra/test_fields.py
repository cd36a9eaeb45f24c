"""A view made from rows takes each field they have by its name; what is given wins."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from infra.fields import made_from


class Person(BaseModel):
    id: str
    name: str
    active: bool


@dataclass
class Profile:
    agency: str
    active: bool


class Detail(BaseModel):
    id: str
    name: str
    agency: str
    active: bool
    person_active: bool
    note: str | None = None


class TestMadeFrom:
    def test_fields_go_by_name_and_the_later_source_wins(self) -> None:
        """`active` is in both: the profile's, given last, is the one shown as such."""
        person = Person(id="p1", name="Ana", active=False)
        detail = made_from(Detail, person, Profile("Lingua", True), person_active=person.active)
        assert detail == Detail(
            id="p1", name="Ana", agency="Lingua", active=True, person_active=False
        )

    def test_given_fields_win_over_the_sources(self) -> None:
        detail = made_from(
            Detail,
            Person(id="p1", name="Ana", active=True),
            Profile("Lingua", True),
            name="A.",
            person_active=True,
        )
        assert (detail.name, detail.note) == ("A.", None)

    def test_a_field_no_source_has_and_none_given_is_missing(self) -> None:
        with pytest.raises(ValueError, match="person_active"):
            made_from(Detail, Person(id="p1", name="Ana", active=True), Profile("L", True))
