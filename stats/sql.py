"""Time arithmetic that SQLite and PostgreSQL write differently but must answer alike.

UTCDateTime stores SQLite times as naive UTC text and PostgreSQL times as timestamptz;
both become seconds since 1970 here, so differences, hours of the week and percentiles
come out of the same integer and float arithmetic on either database.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Float, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from infra.db import UTCDateTime

_MONDAY_SHIFT_H = 72
"""1970-01-01 was a Thursday: three days added make hour 0 of the week Monday 00:00."""
HOURS_OF_WEEK = 168

T = TypeVar("T")


class _WrittenTwoWays(FunctionElement[T]):
    """A SQL function each database writes its own way: `{0}`, `{1}`, ... in a subclass's
    `sqlite` and `postgresql` templates stand for the function's compiled arguments."""

    name: ClassVar[str]
    sqlite: ClassVar[str]
    postgresql: ClassVar[str]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.name = cls.__name__
        # SQLAlchemy caches a statement's compiled form only for classes that say so
        # themselves: an inherited flag does not count.
        cls.inherit_cache = True
        compiles(cls, "sqlite")(_filled_in(cls.sqlite))
        compiles(cls, "postgresql")(_filled_in(cls.postgresql))


def _filled_in(template: str) -> Callable[..., str]:
    def written(found: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
        return template.format(*(compiler.process(c, **kw) for c in found.clauses))

    return written


class epoch_s(_WrittenTwoWays[float]):
    """A timestamp column as seconds since 1970 (a float, microseconds kept)."""

    type = Float()
    # julianday('1970-01-01 00:00:00') is 2440587.5.
    sqlite = "((julianday({0}) - 2440587.5) * 86400.0)"
    postgresql = "CAST(extract(epoch FROM {0}) AS double precision)"


class epoch_whole(_WrittenTwoWays[int]):
    """A timestamp column as whole seconds since 1970 (an integer, rounded down)."""

    type = BigInteger()
    sqlite = "CAST(strftime('%s', {0}) AS INTEGER)"
    postgresql = "CAST(floor(extract(epoch FROM {0})) AS BIGINT)"


class millis_between(_WrittenTwoWays[int]):
    """Whole milliseconds from the second timestamp to the first (rounded): integers
    compare and divide alike on both databases, where float seconds could differ."""

    type = BigInteger()
    sqlite = "CAST(round((julianday({0}) - julianday({1})) * 86400000.0) AS INTEGER)"
    postgresql = "CAST(round(extract(epoch FROM ({0}) - ({1})) * 1000) AS BIGINT)"


def whole_seconds(millis: Any) -> Any:
    """Milliseconds as whole seconds, rounded up (a wait of 12.3 s counts as 13 s)."""
    return (millis + 999) // 1000


def at(moment: datetime) -> ColumnElement[datetime]:
    """A moment as a typed SQL value, comparable with UTCDateTime columns on both backends."""
    return literal(moment, UTCDateTime())


def offsets_between(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) of `zone` over [start, end): the first from `start`, each
    further one from the UTC moment it takes effect."""
    changes = [(start, _offset(start, zone))]
    day = start
    while day < end:
        following = min(day + timedelta(days=1), end)
        if _offset(following, zone) != changes[-1][1]:
            hour = day
            while _offset(hour, zone) == changes[-1][1]:
                hour += timedelta(minutes=15)
            changes.append((hour, _offset(hour, zone)))
        day = following
    return changes


def _offset(moment: datetime, zone: ZoneInfo) -> int:
    shift = moment.astimezone(zone).utcoffset()
    return int(shift.total_seconds()) if shift is not None else 0


def hour_of_week(column: Any, start: datetime, end: datetime, zone: ZoneInfo) -> ColumnElement[int]:
    """The local hour of the week of a timestamp (0 = Monday 00:00-01:00 ... 167), with the
    zone's offsets over the period as a CASE: SQLite knows no time zones."""
    changes = offsets_between(start, end, zone)
    offset: Any
    if len(changes) == 1:
        offset = literal(changes[0][1])
    else:
        offset = case(
            *[(column < at(nxt[0]), literal(cur[1])) for cur, nxt in itertools.pairwise(changes)],
            else_=literal(changes[-1][1]),
        )
    hours = (epoch_whole(column) + offset) // 3600
    how: ColumnElement[int] = (hours + _MONDAY_SHIFT_H) % HOURS_OF_WEEK
    return how


def local_hour_of_week(moment: datetime, zone: ZoneInfo) -> int:
    """`hour_of_week` of one moment, in Python (for the monthly summaries)."""
    local = moment.astimezone(zone)
    return local.weekday() * 24 + local.hour


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    """The local month of a moment, `YYYY-MM`."""
    return moment.astimezone(zone).strftime("%Y-%m")


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The first moment of a local month (`YYYY-MM`) and of the next, in UTC."""
    year, number = int(month[:4]), int(month[5:7])
    following = (year + 1, 1) if number == 12 else (year, number + 1)
    return (
        datetime(year, number, 1, tzinfo=zone).astimezone(UTC),
        datetime(*following, 1, tzinfo=zone).astimezone(UTC),
    )


def months_within(start: datetime, end: datetime, zone: ZoneInfo) -> list[str]:
    """The local months that lie wholly in [start, end), in order."""
    local = start.astimezone(zone)
    month = f"{local.year:04d}-{local.month:02d}"
    found: list[str] = []
    while True:
        first, following = month_bounds(month, zone)
        if first >= end:
            return found
        if first >= start and following <= end:
            found.append(month)
        month = month_of(following, zone)


def split_by_month(start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[str, float]]:
    """The seconds of [start, end) in each local month it touches."""
    parts = []
    while start < end:
        month = month_of(start, zone)
        following = month_bounds(month, zone)[1]
        parts.append((month, (min(end, following) - start).total_seconds()))
        start = following
    return parts
