"""Building one object from another whose fields go by the same names (a view of a row)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


def field_names(kind: type) -> set[str]:
    """The declared fields of a pydantic model (a table row too) or a dataclass."""
    if issubclass(kind, BaseModel):
        return set(kind.model_fields)
    if dataclasses.is_dataclass(kind):
        return {f.name for f in dataclasses.fields(kind)}
    raise TypeError(f"{kind.__name__} declares no fields")


def made_from(target: type[T], source: object, **given: Any) -> T:
    """A `target` with every field `source` has by the same name, and `given` for the rest.

    Fields are read one by one with getattr: an expired column of a row then fails loudly,
    where `model_dump` would leave it out and the view would show its default."""
    names = (field_names(type(source)) & field_names(target)) - given.keys()
    return target(**{name: getattr(source, name) for name in names}, **given)
