"""docs/protocol.md, the socket's contract for client authors, says what the models send
and accept: every message type in both directions, each with its fields, whether each is
always there, and the values of fields that take a fixed set; nothing more."""

from __future__ import annotations

import re
import types
from enum import Enum
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from accounts.views import UserView
from wire import message_models
from wire.client import AnyClientMessage
from wire.objects import BookingView, CallView, OfferView, RequestView
from wire.rooms import GuestView, ParticipantView, RoomView
from wire.server import AnyServerMessage

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"
OBJECTS: dict[str, type[BaseModel]] = {
    "user": UserView,
    "request": RequestView,
    "offer": OfferView,
    "call": CallView,
    "room": RoomView,
    "participant": ParticipantView,
    "guest": GuestView,
    "booking": BookingView,
}


def _sections(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """`## part` -> `### name` -> field -> the row's type column and its 'always' column."""
    parts: dict[str, dict[str, dict[str, str]]] = {}
    part = heading = ""
    for line in text.splitlines():
        if line.startswith("## "):
            part, heading = line[3:].strip(), ""
            parts[part] = {}
        elif line.startswith("### "):
            heading = line[4:].strip().strip("`")
            parts[part][heading] = {}
        elif heading and (row := re.match(r"\|\s*`([^`]+)`\s*\|(.*?)\|\s*(yes|no)\s*\|", line)):
            parts[part][heading][row[1]] = f"{row[3]}|{row[2]}"
    return parts


SECTIONS = _sections(DOC.read_text(encoding="utf-8"))


def _choices(field: FieldInfo) -> set[str] | None:
    """The fixed values a field takes (a Literal or an enum), None for open ones."""
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        return {str(v) for v in get_args(annotation)}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return {str(m.value) for m in annotation}
    return None


def _always(field: FieldInfo, *, sent: bool) -> bool:
    """Whether a field is always there: one the server sends is unless it is left out when
    None or may be null; one a client sends must be when the model requires it."""
    if not sent:
        return field.is_required()
    nullable = type(None) in get_args(field.annotation)
    return field.exclude_if is None and not nullable


def _documented(model: type[BaseModel], *, sent: bool) -> dict[str, tuple[bool, set[str] | None]]:
    return {
        field.alias or name: (_always(field, sent=sent), _choices(field))
        for name, field in model.model_fields.items()
    }


def _written(rows: dict[str, str]) -> dict[str, tuple[bool, set[str] | None]]:
    written = {}
    for name, row in rows.items():
        always, kind = row.split("|", 1)
        quoted = set(re.findall(r'"([^"]+)"', kind))
        written[name] = (always == "yes", quoted or None)
    return written


CLIENT = message_models(AnyClientMessage)
SERVER = message_models(AnyServerMessage)
CASES = [
    *(("Messages from the client", t, m, False) for t, m in CLIENT.items()),
    *(("Messages from the server", t, m, True) for t, m in SERVER.items()),
    *(("Objects", name, m, True) for name, m in OBJECTS.items()),
]


class TestProtocolDoc:
    @pytest.mark.parametrize(("part", "name", "model", "sent"), CASES, ids=[c[1] for c in CASES])
    def test_each_message_and_object_is_documented_as_it_is(self, part, name, model, sent):
        """Its section lists exactly its fields, which are always there, and their values."""
        assert name in SECTIONS[part], f"docs/protocol.md has no `{name}` under {part}"
        documented = _documented(model, sent=sent)
        written = _written(SECTIONS[part][name])
        assert set(written) == set(documented), f"`{name}`: fields differ"
        for field, (always, choices) in documented.items():
            assert written[field][0] == always, f"`{name}.{field}`: always is {always}"
            if choices is not None:
                assert written[field][1] == choices, f"`{name}.{field}`: values"

    @pytest.mark.parametrize(
        ("part", "members"),
        [
            ("Messages from the client", CLIENT),
            ("Messages from the server", SERVER),
            ("Objects", OBJECTS),
        ],
    )
    def test_nothing_is_documented_that_does_not_exist(self, part, members):
        """Every message or object the page describes is one the code has."""
        assert set(SECTIONS[part]) == set(members)
