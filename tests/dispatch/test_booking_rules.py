"""The rules of bookings without a server: local times across daylight saving changes,
who may claim a booking, and when reminders are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.booking_rules import (
    Seeker,
    Wanted,
    may_claim,
    may_start,
    overlaps,
    reminders_due,
)
from dispatch.booking_time import NonexistentLocalTime, booked_time, parse_local

BERLIN = "Europe/Berlin"


def _wanted(language: str, *, widened: bool = False, **kw: object) -> Wanted:
    values: dict[str, object] = {"gender": None, "specialization": None, "required": False}
    values.update(kw)
    return Wanted(language=language, widened=widened, **values)  # type: ignore[arg-type]


def _seeker(*tags: str, gender: str | None = None, specs: tuple[str, ...] = ()) -> Seeker:
    return Seeker(tags=set(tags), gender=gender, specializations=set(specs))


class TestLocalTimes:
    def test_a_summer_and_a_winter_morning_are_two_and_one_hours_ahead_of_utc(self):
        """10:00 in Berlin is 08:00 UTC in summer and 09:00 UTC in winter."""
        summer = booked_time(parse_local("2027-07-01T10:00"), BERLIN)
        winter = booked_time(parse_local("2027-01-15T10:00"), BERLIN)
        assert summer.starts_at == datetime(2027, 7, 1, 8, 0, tzinfo=UTC)
        assert winter.starts_at == datetime(2027, 1, 15, 9, 0, tzinfo=UTC)

    @pytest.mark.parametrize("local", ["2027-03-28T02:00", "2027-03-28T02:30", "2027-03-28T02:59"])
    def test_a_time_the_spring_change_skips_is_refused(self, local):
        """02:00-02:59 on the last Sunday of March does not exist in Berlin."""
        with pytest.raises(NonexistentLocalTime) as refused:
            booked_time(parse_local(local), BERLIN)
        assert refused.value.details["fields"][0]["field"] == "local_start"
        assert refused.value.details["fields"][0]["code"] == "nonexistent_local_time"

    def test_the_times_around_the_spring_change_exist(self):
        """01:59 is still winter time (UTC+1), 03:00 already summer time (UTC+2)."""
        before = booked_time(parse_local("2027-03-28T01:59"), BERLIN)
        after = booked_time(parse_local("2027-03-28T03:00"), BERLIN)
        assert before.starts_at == datetime(2027, 3, 28, 0, 59, tzinfo=UTC)
        assert after.starts_at == datetime(2027, 3, 28, 1, 0, tzinfo=UTC)

    def test_a_time_the_autumn_change_repeats_is_the_first_of_the_two(self):
        """02:30 on the last Sunday of October comes twice; the booking is the first
        (summer time, 00:30 UTC), and is marked ambiguous."""
        fold = booked_time(parse_local("2027-10-31T02:30"), BERLIN)
        assert fold.starts_at == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
        assert fold.ambiguous
        after = booked_time(parse_local("2027-10-31T03:00"), BERLIN)
        assert after.starts_at == datetime(2027, 10, 31, 2, 0, tzinfo=UTC)
        assert not after.ambiguous

    def test_the_local_time_is_kept_as_written(self):
        """The zone and the wall-clock time stay beside the instant."""
        start = booked_time(parse_local("2027-10-31T02:30"), BERLIN)
        assert start.columns() == {
            "local_start": "2027-10-31T02:30",
            "time_zone": BERLIN,
            "starts_at": datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
        }


class TestWhoMayClaim:
    def test_variants_serve_as_requests_do(self):
        """ar is claimed by ar and ar-SY; ar-SY by ar-SY and ar, never by ar-EG."""
        assert may_claim(_wanted("ar"), _seeker("ar-SY"))
        assert may_claim(_wanted("ar-SY"), _seeker("ar"))
        assert not may_claim(_wanted("ar-SY"), _seeker("ar-EG"))
        assert not may_claim(_wanted("ar"), _seeker("fa"))

    def test_a_widened_booking_reaches_every_variant_of_its_language(self):
        """Escalated, ar-SY is shown to ar-EG too, never to another language."""
        assert may_claim(_wanted("ar-SY", widened=True), _seeker("ar-EG"))
        assert not may_claim(_wanted("ar-SY", widened=True), _seeker("fa"))

    def test_wishes_hold_until_widened_and_required_ones_always(self):
        """A gender wish narrows the booking until it is widened; a required one for good."""
        wish = _wanted("uk", gender="female")
        assert not may_claim(wish, _seeker("uk", gender="male"))
        assert may_claim(wish, _seeker("uk", gender="female"))
        assert may_claim(_wanted("uk", gender="female", widened=True), _seeker("uk", gender="male"))
        required = _wanted("uk", gender="female", required=True, widened=True)
        assert not may_claim(required, _seeker("uk", gender="male"))


class TestTimes:
    START = datetime(2027, 1, 15, 9, 0, tzinfo=UTC)

    def test_reminders_come_due_one_after_the_other(self):
        """A day before the first is due, 15 minutes before the second; both at once when
        the booking was made late."""
        plan = [86400, 900]
        assert reminders_due(self.START, 0, plan, self.START - timedelta(days=2)) == 0
        assert reminders_due(self.START, 0, plan, self.START - timedelta(hours=23)) == 1
        assert reminders_due(self.START, 1, plan, self.START - timedelta(minutes=10)) == 2
        assert reminders_due(self.START, 0, plan, self.START - timedelta(minutes=5)) == 2

    def test_a_call_starts_from_a_quarter_before_to_the_end_of_the_booked_time(self):
        """Early by the setting, never after the booked time."""
        assert not may_start(self.START, 60, self.START - timedelta(minutes=16), 900)
        assert may_start(self.START, 60, self.START - timedelta(minutes=15), 900)
        assert may_start(self.START, 60, self.START + timedelta(minutes=59), 900)
        assert not may_start(self.START, 60, self.START + timedelta(minutes=60), 900)

    def test_back_to_back_bookings_do_not_overlap(self):
        """09:00-10:00 and 10:00-11:00 do not overlap; 09:30-10:30 overlaps both."""
        ten = self.START + timedelta(hours=1)
        assert not overlaps(self.START, 60, ten, 60)
        assert overlaps(self.START, 60, self.START + timedelta(minutes=30), 60)
