"""Tariff arithmetic and tariff choice: pure functions, integers only, no I/O.

Rules (docs/billing.md repeats them for finance):
- `duration_s` is the exact time from `connected_at` to `ended_at`, rounded down to
  whole seconds (a call of 59.9 s lasted 59 s); never negative.
- A call shorter than one whole second is billed nothing. Otherwise the billable time is
  the duration, raised to the tariff's minimum, then rounded up to whole started units.
- `amount_cents` = billable units * price per unit, in integer cents.
- The tariff of a call is chosen on the local date (configured time zone) of its start:
  among tariffs whose `valid_from` is on or before that date, an organisation's own
  tariff beats the default one, a tariff for a language group that holds the call's
  language beats one for every language, and among equals the newest `valid_from` wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TariffTerms:
    """What the rules need to know of a tariff."""

    id: str
    name: str
    organization_id: str | None
    languages: frozenset[str] | None
    unit_s: int
    minimum_s: int
    price_per_unit_cents: int
    currency: str
    valid_from: date
    created_at: datetime | None = None
    in_house: bool = False
    """Bills calls interpreted by in-house staff (and only those)."""


@dataclass(frozen=True, slots=True)
class Charge:
    """The billed facts of one call under one tariff."""

    duration_s: int
    billable_s: int
    amount_cents: int


def duration_seconds(connected_at: datetime, ended_at: datetime) -> int:
    """Whole seconds from connect to end, rounded down; 0 if the end is not after the start."""
    # Subtract in UTC: Python subtracts two datetimes of the same ZoneInfo by their wall
    # clocks, which would add or lose an hour across a daylight-saving change. timedelta
    # arithmetic is exact (days, seconds, microseconds): no float rounding.
    delta = ended_at.astimezone(UTC) - connected_at.astimezone(UTC)
    return max(0, delta.days * 86400 + delta.seconds)


def billable_seconds(duration_s: int, unit_s: int, minimum_s: int) -> int:
    """The duration raised to the minimum and rounded up to whole started units."""
    if unit_s < 1:
        raise ValueError("unit_s must be at least 1")
    if duration_s <= 0:
        return 0
    seconds = max(duration_s, minimum_s)
    units = -(-seconds // unit_s)
    return units * unit_s


def amount_cents(billable_s: int, unit_s: int, price_per_unit_cents: int) -> int:
    """Billable units times the price per unit."""
    return (billable_s // unit_s) * price_per_unit_cents


def charge(duration_s: int, tariff: TariffTerms) -> Charge:
    """Billable time and amount of a call of `duration_s` under `tariff`."""
    billable = billable_seconds(duration_s, tariff.unit_s, tariff.minimum_s)
    return Charge(
        duration_s=duration_s,
        billable_s=billable,
        amount_cents=amount_cents(billable, tariff.unit_s, tariff.price_per_unit_cents),
    )


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar date of an aware moment in a time zone."""
    return moment.astimezone(zone).date()


def local_month(moment: datetime, zone: ZoneInfo) -> str:
    """`YYYY-MM` of an aware moment in a time zone."""
    return moment.astimezone(zone).strftime("%Y-%m")


def language_group_holds(group: frozenset[str], language: str) -> bool:
    """Whether a group covers a call's language: the tag itself or its base language.

    A group `ar` covers calls in `ar-SY`; a group `ar-SY` does not cover `ar` or `ar-EG`.
    """
    return language in group or language.split("-", 1)[0] in group


def choose_tariff(
    tariffs: Iterable[TariffTerms],
    organization_id: str,
    language: str,
    on: date,
    in_house: bool = False,
) -> TariffTerms | None:
    """The tariff that applies to a call of this organisation and language started `on`:
    a call interpreted by in-house staff only by an in-house tariff, any other call only
    by a tariff that is not."""
    candidates = [
        t
        for t in tariffs
        if t.in_house == in_house
        and t.valid_from <= on
        and t.organization_id in (None, organization_id)
        and (t.languages is None or language_group_holds(t.languages, language))
    ]
    return max(candidates, key=_precedence, default=None)


def _precedence(tariff: TariffTerms) -> tuple[bool, bool, date, datetime, str]:
    # Specific beats general, then newer beats older; created_at and id only break exact
    # ties, so that the choice never depends on the order in which rows came.
    return (
        tariff.organization_id is not None,
        tariff.languages is not None,
        tariff.valid_from,
        tariff.created_at or _EPOCH,
        tariff.id,
    )


def split_languages(value: str | None) -> frozenset[str] | None:
    """The language group stored as space-separated tags; None means every language."""
    if not value or not value.strip():
        return None
    return frozenset(value.split())


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a reference read aloud or retyped stays right."""


def call_reference(call_id: str) -> str:
    """A short reference of a call for people (`K7F3-A92Q`): 40 bits of a hash of its id."""
    number = int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=5).digest())
    chars = "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(35, -1, -5))
    return f"{chars[:4]}-{chars[4:]}"


def consultation_reference(room_id: str | None) -> str:
    """The short reference of a consultation for people, made as a call's is (`call_reference`)
    from the room's id; empty for a record of an ordinary two-party call."""
    return call_reference(room_id) if room_id else ""
