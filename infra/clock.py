"""The clock every service reads, so that tests can move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo, available_timezones

# Names in the zone database that depend on the machine rather than on a place.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and return the new now."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to a given moment."""
        self._now = when


def start_of_day(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day in the configured time zone."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_PLACES


def is_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone as the zone database spells it (Europe/Berlin)."""
    return name in _time_zones()
