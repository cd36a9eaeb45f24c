"""Building one object from others whose fields go by the same names (a view of rows)."""

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


def made_from(target: type[T], *sources: object, **given: Any) -> T:
    """A `target` with every field the sources have by the same name (a later source's over
    an earlier's, as in a dict merge), and `given` over them and for the rest.

    Fields are read one by one with getattr: an expired column of a row then fails loudly,
    where `model_dump` would leave it out and the view would show its default."""
    wanted = field_names(target) - given.keys()
    values: dict[str, Any] = {}
    for source in sources:
        values |= {name: getattr(source, name) for name in wanted & field_names(type(source))}
    return target(**values, **given)
