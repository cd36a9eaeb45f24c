"""When a booking happens: a local wall-clock time in an IANA zone, turned into one instant.

Pure rules, testable without a server. A wall-clock time in the hour that a spring-forward
change skips does not exist and is refused; one in the hour that an autumn change repeats
exists twice and is read as the earlier of the two (still summer time), which is what a
person writing "02:30" on the night of the change most likely means: the first 02:30 that
comes. The zone and the local time are kept beside the instant, so that a booking shows
the time as it was made even when the zone's rules change later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from infra.errors import InvalidInput

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
"""How a local start is written on the wire and stored: `2026-03-29T10:30`, no zone."""


class NonexistentLocalTime(InvalidInput):
    code = "invalid_input"
    default_message = "This local time does not exist: the clocks skip it (daylight saving)."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, field="local_start", problem_code="nonexistent_local_time")


class BadLocalTime(InvalidInput):
    code = "invalid_input"
    default_message = "Write the local start as YYYY-MM-DDTHH:MM."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, field="local_start", problem_code="bad_local_time")


@dataclass(frozen=True, slots=True)
class BookedTime:
    """A booking's start: the local wall-clock time, its zone and the instant (UTC)."""

    local: datetime
    """Naive: the wall-clock time as the counsellor wrote it."""
    zone: str
    starts_at: datetime
    """The instant, aware, in UTC."""
    ambiguous: bool = False
    """The local time came twice (autumn change); `starts_at` is the earlier one."""

    def columns(self) -> dict[str, Any]:
        """The start as a booking's columns, the local time as the wire and the table hold it."""
        return {
            "local_start": self.local.strftime(LOCAL_FORMAT),
            "time_zone": self.zone,
            "starts_at": self.starts_at,
        }


def parse_local(text: str) -> datetime:
    """A local start `YYYY-MM-DDTHH:MM` as a naive datetime; 422 naming `local_start` else."""
    try:
        local = datetime.strptime(text, LOCAL_FORMAT)
    except ValueError:
        raise BadLocalTime() from None
    return local


def booked_time(local: datetime, zone: str) -> BookedTime:
    """The instant of a local wall-clock time in `zone`: a time the clocks skip is refused
    (422), a time they pass twice is the earlier instant."""
    tz = ZoneInfo(zone)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    as_utc = first.astimezone(UTC)
    # A skipped time does not survive the way there and back: 02:30 on the spring night
    # comes back as 03:30 (or 01:30), whichever fold is asked for.
    if as_utc.astimezone(tz).replace(tzinfo=None) != local:
        raise NonexistentLocalTime(
            f"{local.strftime(LOCAL_FORMAT)} does not exist in {zone}: "
            "the clocks skip it (daylight saving); pick a time after the change."
        )
    ambiguous = first.utcoffset() != second.utcoffset()
    return BookedTime(local=local, zone=zone, starts_at=as_utc, ambiguous=ambiguous)
