"""Who may see and claim a booking, and the times around it: plain rules without I/O.

Before a booking is escalated it is shown as a request is offered: to interpreters who
speak its language or a variant that serves it (`interpreters.languages.variant_rank`:
`ar` is served by `ar-SY`, `ar-SY` by `ar`, never by `ar-EG`) and who meet its wishes
(gender, specialisation). Escalated, it is widened: every variant of its base language
serves it (`ar-SY` by `ar-EG` too), and wishes that are not `required` no longer hold.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from interpreters.languages import base_language, variant_rank


@dataclass(frozen=True, slots=True)
class Seeker:
    """An interpreter looking at bookings: what they speak and are."""

    tags: Collection[str]
    gender: str | None
    specializations: Collection[str]


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a booking asks for."""

    language: str
    gender: str | None
    specialization: str | None
    required: bool
    widened: bool


def serves(wanted: Wanted, tags: Collection[str]) -> bool:
    """Whether an interpreter speaking `tags` serves the booking's language."""
    if wanted.widened:
        base = base_language(wanted.language)
        return any(base_language(tag) == base for tag in tags)
    return any(variant_rank(wanted.language, tag) is not None for tag in tags)


def meets_wishes(wanted: Wanted, seeker: Seeker) -> bool:
    """Whether the interpreter meets the booking's wishes, while they hold."""
    if wanted.widened and not wanted.required:
        return True
    if wanted.gender and (seeker.gender or "").lower() != wanted.gender:
        return False
    return not (wanted.specialization and wanted.specialization not in seeker.specializations)


def may_claim(wanted: Wanted, seeker: Seeker) -> bool:
    """Whether an interpreter sees the booking among the open ones and may claim it."""
    return serves(wanted, seeker.tags) and meets_wishes(wanted, seeker)


def give_back_until(starts_at: datetime, before_s: int) -> datetime:
    """The last moment a claimed booking may be given back."""
    return starts_at - timedelta(seconds=before_s)


def may_start(starts_at: datetime, duration_min: int, now: datetime, early_s: int) -> bool:
    """Whether the appointment's call may be started now: from `early_s` before the start
    to the end of the booked time."""
    return (
        starts_at - timedelta(seconds=early_s) <= now < starts_at + timedelta(minutes=duration_min)
    )


def reminders_due(starts_at: datetime, sent: int, reminders_s: Sequence[int], now: datetime) -> int:
    """How many reminders have come due by `now` (earliest first); more than `sent` means
    one is to go out. Those that came due together are sent as one (the latest)."""
    ordered = sorted(reminders_s, reverse=True)
    due = sum(1 for before in ordered if starts_at - timedelta(seconds=before) <= now)
    return max(due, sent)


def overlaps(a_start: datetime, a_min: int, b_start: datetime, b_min: int) -> bool:
    """Whether two booked times overlap."""
    return a_start < b_start + timedelta(minutes=b_min) and b_start < a_start + timedelta(
        minutes=a_min
    )
