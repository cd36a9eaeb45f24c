"""Tariff arithmetic and tariff choice at every boundary, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.rules import (
    TariffTerms,
    amount_cents,
    billable_seconds,
    charge,
    choose_tariff,
    duration_seconds,
    local_date,
    local_month,
)

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def tariff(
    id: str = "t",
    *,
    organization_id: str | None = None,
    languages: set[str] | None = None,
    unit_s: int = 60,
    minimum_s: int = 0,
    price: int = 150,
    valid_from: date = date(2020, 1, 1),
) -> TariffTerms:
    return TariffTerms(
        id=id,
        name=id,
        organization_id=organization_id,
        languages=frozenset(languages) if languages is not None else None,
        unit_s=unit_s,
        minimum_s=minimum_s,
        price_per_unit_cents=price,
        currency="EUR",
        valid_from=valid_from,
    )


class TestDuration:
    def test_whole_seconds_are_kept(self):
        """A call of exactly 61 s lasted 61 s."""
        assert duration_seconds(T0, T0 + timedelta(seconds=61)) == 61

    def test_fractions_are_rounded_down(self):
        """59.999 s counts as 59 s: the rounding is the floor of the exact difference."""
        assert duration_seconds(T0, T0 + timedelta(seconds=59, microseconds=999_999)) == 59

    def test_under_a_second_is_zero(self):
        """A call that ended within its first second lasted 0 s."""
        assert duration_seconds(T0, T0 + timedelta(milliseconds=400)) == 0

    def test_an_end_before_the_start_is_zero(self):
        """Clock skew never gives a negative duration."""
        assert duration_seconds(T0, T0 - timedelta(seconds=5)) == 0

    def test_a_day_long_call(self):
        """Durations over a day are counted in full."""
        assert duration_seconds(T0, T0 + timedelta(days=1, seconds=3)) == 86403


class TestBillable:
    @pytest.mark.parametrize(
        ("duration", "billable"),
        [
            (0, 0),  # nothing to bill
            (1, 60),  # a started minute
            (60, 60),  # exactly one unit
            (61, 120),  # one unit plus one second
            (119, 120),
            (120, 120),
        ],
    )
    def test_per_started_minute(self, duration, billable):
        """A per-minute tariff bills every started minute."""
        assert billable_seconds(duration, unit_s=60, minimum_s=0) == billable

    @pytest.mark.parametrize(("duration", "billable"), [(0, 0), (1, 1), (59, 59), (3601, 3601)])
    def test_per_second(self, duration, billable):
        """A per-second tariff bills the duration itself."""
        assert billable_seconds(duration, unit_s=1, minimum_s=0) == billable

    @pytest.mark.parametrize(
        ("duration", "billable"), [(1, 900), (900, 900), (901, 1800), (1800, 1800)]
    )
    def test_per_started_quarter_hour(self, duration, billable):
        """A 900 s unit bills every started quarter hour."""
        assert billable_seconds(duration, unit_s=900, minimum_s=0) == billable

    @pytest.mark.parametrize(
        ("duration", "billable"),
        [(1, 300), (299, 300), (300, 300), (301, 360), (0, 0)],
    )
    def test_below_the_minimum_bills_the_minimum(self, duration, billable):
        """Calls below a 5-minute minimum bill 5 minutes; longer ones per started minute."""
        assert billable_seconds(duration, unit_s=60, minimum_s=300) == billable

    def test_a_minimum_off_the_unit_grid_is_rounded_up_to_a_unit(self):
        """A 90 s minimum under a 60 s unit bills two units, so amount = units * price."""
        assert billable_seconds(10, unit_s=60, minimum_s=90) == 120

    def test_a_zero_unit_is_refused(self):
        """The rules refuse a unit of 0 s (the API never stores one)."""
        with pytest.raises(ValueError, match="unit_s"):
            billable_seconds(10, unit_s=0, minimum_s=0)

    def test_amount_is_units_times_price(self):
        """Three started minutes at 1.50 EUR cost 4.50 EUR."""
        assert amount_cents(180, unit_s=60, price_per_unit_cents=150) == 450

    def test_charge_of_one_unit_plus_one_second(self):
        """61 s on a per-minute tariff at 1.50 EUR: 120 s billed, 3.00 EUR."""
        billed = charge(61, tariff(price=150))
        assert (billed.duration_s, billed.billable_s, billed.amount_cents) == (61, 120, 300)

    @given(
        duration=st.integers(min_value=0, max_value=10 * 86400),
        unit=st.integers(min_value=1, max_value=3600),
        minimum=st.integers(min_value=0, max_value=7200),
        price=st.integers(min_value=0, max_value=100_000),
    )
    def test_properties(self, duration, unit, minimum, price):
        """Billable time covers duration and minimum, by less than one unit extra, in units."""
        billable = billable_seconds(duration, unit, minimum)
        if duration == 0:
            assert billable == 0
            return
        assert billable % unit == 0
        assert billable >= max(duration, minimum)
        assert billable - max(duration, minimum) < unit
        assert amount_cents(billable, unit, price) == billable // unit * price


class TestTariffChoice:
    def test_no_tariff_gives_none(self):
        """Without any tariff nothing applies."""
        assert choose_tariff([], "org", "uk", date(2026, 1, 1)) is None

    def test_organisation_tariff_beats_the_default(self):
        """An organisation's own tariff wins over the default one."""
        default, own = tariff("default"), tariff("own", organization_id="org")
        assert choose_tariff([own, default], "org", "uk", date(2026, 1, 1)) is own
        assert choose_tariff([own, default], "other", "uk", date(2026, 1, 1)) is default

    def test_language_group_beats_every_language(self):
        """A tariff for a language group wins for those languages only."""
        general = tariff("general", organization_id="org")
        rare = tariff("rare", organization_id="org", languages={"ti", "ckb"})
        assert choose_tariff([general, rare], "org", "ti", date(2026, 1, 1)) is rare
        assert choose_tariff([general, rare], "org", "uk", date(2026, 1, 1)) is general

    def test_a_group_covers_regional_variants_of_its_languages(self):
        """A group `ar` covers a call in `ar-SY`; a group `ar-SY` does not cover `ar-EG`."""
        arabic = tariff("arabic", languages={"ar"})
        syrian = tariff("syrian", languages={"ar-SY"})
        base = tariff("base")
        assert choose_tariff([arabic, base], "o", "ar-SY", date(2026, 1, 1)) is arabic
        assert choose_tariff([syrian, base], "o", "ar-EG", date(2026, 1, 1)) is base

    def test_organisation_beats_language_group_of_the_default(self):
        """An organisation's general tariff wins over a default tariff for a language group."""
        own = tariff("own", organization_id="org")
        default_rare = tariff("default-rare", languages={"ti"})
        assert choose_tariff([own, default_rare], "org", "ti", date(2026, 1, 1)) is own

    def test_newest_valid_tariff_wins_and_future_ones_wait(self):
        """A tariff change applies from its valid_from date on, not before."""
        old = tariff("old", valid_from=date(2025, 1, 1))
        new = tariff("new", valid_from=date(2026, 2, 1))
        assert choose_tariff([old, new], "o", "uk", date(2026, 1, 31)) is old
        assert choose_tariff([old, new], "o", "uk", date(2026, 2, 1)) is new
        assert choose_tariff([new], "o", "uk", date(2026, 1, 31)) is None

    def test_a_tariff_change_between_two_calls(self):
        """Two calls either side of a price change are billed at their own prices."""
        tariffs = [
            tariff("2025", price=100, valid_from=date(2025, 1, 1)),
            tariff("2026", price=120, valid_from=date(2026, 1, 1)),
        ]
        before = datetime(2025, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, still 2025
        after = datetime(2025, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 in Berlin, 2026
        first = choose_tariff(tariffs, "o", "uk", local_date(before, BERLIN))
        second = choose_tariff(tariffs, "o", "uk", local_date(after, BERLIN))
        assert first is not None
        assert second is not None
        assert charge(60, first).amount_cents == 100
        assert charge(60, second).amount_cents == 120

    def test_ties_are_broken_the_same_way_whatever_the_order(self):
        """Two tariffs of the same scope and date: the choice does not depend on row order."""
        a, b = tariff("a"), tariff("b")
        assert choose_tariff([a, b], "o", "uk", date(2026, 1, 1)) is choose_tariff(
            [b, a], "o", "uk", date(2026, 1, 1)
        )


class TestCalendar:
    def test_a_call_spanning_midnight_and_a_month_end(self):
        """A call from 23:50 on 31 January to 00:10 on 1 February (Berlin) is 20 minutes,
        belongs to January and is priced under January's tariff."""
        start = datetime(2026, 1, 31, 22, 50, tzinfo=UTC)
        end = datetime(2026, 1, 31, 23, 10, tzinfo=UTC)
        assert duration_seconds(start, end) == 1200
        assert local_date(start, BERLIN) == date(2026, 1, 31)
        assert local_month(start, BERLIN) == "2026-01"
        assert local_month(end, BERLIN) == "2026-02"
        tariffs = [
            tariff("jan", price=100, valid_from=date(2026, 1, 1)),
            tariff("feb", price=200, valid_from=date(2026, 2, 1)),
        ]
        chosen = choose_tariff(tariffs, "o", "uk", local_date(start, BERLIN))
        assert chosen is not None
        assert chosen.id == "jan"
        assert charge(1200, chosen).amount_cents == 2000

    def test_spring_forward_night_is_not_an_hour_longer_or_shorter(self):
        """01:30 CET to 03:30 CEST on 29 March 2026 is one real hour, billed as one hour."""
        start = datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN)
        end = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
        assert duration_seconds(start, end) == 3600
        assert charge(3600, tariff(unit_s=60, price=100)).amount_cents == 6000

    def test_fall_back_night_counts_the_repeated_hour(self):
        """01:30 CEST to 02:30 CET on 25 October 2026 (the clock shows one hour) is two hours."""
        start = datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN)
        end = datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
        assert duration_seconds(start, end) == 7200
        inside = datetime(2026, 10, 25, 2, 15, fold=0, tzinfo=BERLIN)
        again = datetime(2026, 10, 25, 2, 15, fold=1, tzinfo=BERLIN)
        assert duration_seconds(inside, again) == 3600

    def test_local_date_of_a_call_just_after_midnight_in_summer(self):
        """22:30 UTC on 30 June is already 1 July in Berlin (UTC+2)."""
        moment = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)
        assert local_date(moment, BERLIN) == date(2026, 7, 1)
        assert local_month(moment, BERLIN) == "2026-07"
