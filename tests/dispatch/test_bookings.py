"""Booked appointments through the front door: booking (with daylight saving), interpreters
seeing and claiming, giving back and cancelling, reminders and escalation by the clock, and
the start of the appointment offered to the booked interpreter first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from accounts.models import Role
from dispatch.announce import PUBLISHER
from dispatch.booking_sweep import sweep_bookings
from dispatch.models import InterpretationRequest
from infra.appkeys import DATABASE, SETTINGS
from tests.dispatch.conftest import Desk, Person

# The ManualClock starts on 2026-11-26 09:00 UTC (10:00 in Berlin).
TOMORROW = "2026-11-27T10:00"
TOMORROW_AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


async def book(who: Person, language: str = "uk", local_start: str = TOMORROW, **kw: Any) -> Any:
    status, body = await who.post(
        "/api/bookings",
        {"language": language, "local_start": local_start, "duration_min": 60, **kw},
    )
    assert status == 201, body
    return body["booking"]


async def sweep_at(desk: Desk, when: datetime) -> None:
    """Move the clock to `when` and apply the bookings' deadlines (and publish)."""
    app = desk.factory.client.app
    desk.factory.clock.set(when)
    news = await sweep_bookings(app[DATABASE], app[SETTINGS], when)
    await app[PUBLISHER].publish(news)


async def admin_person(desk: Desk) -> Person:
    user = await desk.factory.user(Role.ADMIN)
    return await desk._person(user)


class TestBooking:
    async def test_a_booking_keeps_its_local_time_zone_and_instant(self, desk):
        """10:00 tomorrow in the centre's zone is stored as written, with its instant."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"])
        booking = await book(counsellor)
        assert booking["local_start"] == TOMORROW
        assert booking["time_zone"] == "Europe/Berlin"
        assert booking["starts_at"] == "2026-11-27T09:00:00.000Z"
        assert (booking["state"], booking["interpreter"], booking["escalated"]) == (
            "open",
            None,
            False,
        )
        _, body = await counsellor.get("/api/bookings")
        assert [b["id"] for b in body["bookings"]] == [booking["id"]]

    async def test_both_daylight_saving_changes_of_berlin(self, desk):
        """A time the spring change skips is 422 naming `local_start`; a time the autumn
        change repeats is booked at its first occurrence (summer time)."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"])
        status, body = await counsellor.post(
            "/api/bookings",
            {"language": "uk", "local_start": "2027-03-28T02:30", "duration_min": 30},
        )
        assert status == 422
        assert body["error"]["code"] == "invalid_input"
        assert body["error"]["fields"][0]["field"] == "local_start"
        assert body["error"]["fields"][0]["code"] == "nonexistent_local_time"
        spring = await book(counsellor, local_start="2027-03-28T03:00")
        autumn = await book(counsellor, local_start="2027-10-31T02:30")
        assert spring["starts_at"] == "2027-03-28T01:00:00.000Z"
        assert autumn["starts_at"] == "2027-10-31T00:30:00.000Z"
        assert autumn["local_start"] == "2027-10-31T02:30"

    async def test_a_booking_takes_the_time_zone_of_its_site(self, desk):
        """A counsellor at a site in Lisbon books 10:00 Lisbon time (UTC+0 in winter); a
        booking for another of the organisation's sites takes that site's zone; a site of
        another organisation is 422 `unknown_site`."""
        factory = desk.factory
        org = await factory.organization()
        lisbon = await factory.site(org, "Lisboa", time_zone="Europe/Lisbon")
        helsinki = await factory.site(org, "Helsinki", time_zone="Europe/Helsinki")
        elsewhere = await factory.site(await factory.organization(), "Fremd")
        counsellor = await desk._person(
            await factory.user(Role.COUNSELLOR, organization=org, site=lisbon)
        )
        await desk.interpreter(["uk"])
        here = await book(counsellor)
        assert (here["time_zone"], here["starts_at"]) == (
            "Europe/Lisbon",
            "2026-11-27T10:00:00.000Z",
        )
        assert here["site"] == {"id": lisbon.id, "name": "Lisboa"}
        there = await book(counsellor, site_id=helsinki.id)
        assert (there["time_zone"], there["starts_at"]) == (
            "Europe/Helsinki",
            "2026-11-27T08:00:00.000Z",
        )
        sent = {"language": "uk", "local_start": TOMORROW, "duration_min": 60}
        status, body = await counsellor.post("/api/bookings", {**sent, "site_id": elsewhere.id})
        assert (status, body["error"]["code"]) == (422, "unknown_site")
        assert body["error"]["fields"][0]["field"] == "site_id"
        # The appointment's request is asked at the booking's site.
        factory.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
        status, started = await counsellor.post(f"/api/bookings/{there['id']}/start")
        assert status == 201, started
        async with factory.db.read() as session:
            req = await session.get(InterpretationRequest, started["request"]["id"])
        assert req is not None
        assert req.site_id == helsinki.id

    @pytest.mark.parametrize(
        ("body", "field", "code"),
        [
            ({"local_start": "2026-11-26T09:00"}, "local_start", "in_the_past"),
            ({"local_start": "26.11.2026 10:00"}, "local_start", "bad_local_time"),
            ({"local_start": "2028-01-01T10:00"}, "local_start", "too_far_ahead"),
            ({"duration_min": 5}, "duration_min", None),
            ({"language": "ti"}, "language", None),
        ],
    )
    async def test_bad_bookings_are_refused_naming_the_field(self, desk, body, field, code):
        """A start in the past, badly written or too far ahead, too short, or a language
        nobody speaks: 422 with `fields`."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"])
        sent = {"language": "uk", "local_start": TOMORROW, "duration_min": 60, **body}
        status, answer = await counsellor.post("/api/bookings", sent)
        assert status == 422, answer
        problem = answer["error"]["fields"][0]
        assert problem["field"] == field
        if code:
            assert problem["code"] == code


class TestClaiming:
    async def test_interpreters_of_the_language_and_its_variants_see_it_live(self, desk):
        """An ar-SY booking reaches ar-SY and ar interpreters as `booking.updated`, never an
        ar-EG one, and is among their open bookings."""
        counsellor = await desk.counsellor()
        syrian, plain, egyptian = [await desk.interpreter([t]) for t in ("ar-SY", "ar", "ar-EG")]
        booking = await book(counsellor, "ar-SY")
        for person in (syrian, plain):
            news = await person.next_event("booking.updated")
            assert (news["booking"]["id"], news["reason"]) == (booking["id"], "created")
            status, body = await person.get("/api/bookings/open")
            assert [b["id"] for b in body["bookings"]] == [booking["id"]]
        await egyptian.no_event("booking.updated")
        status, body = await egyptian.get("/api/bookings/open")
        assert body["bookings"] == []
        status, _ = await egyptian.post(f"/api/bookings/{booking['id']}/claim")
        assert status == 404

    async def test_two_interpreters_claim_at_once_and_exactly_one_wins(self, desk, db):
        """Claims sent at the same moment (truly concurrent on PostgreSQL): one 200, the
        others 409 `booking_taken`; the booking names the winner."""
        counsellor = await desk.counsellor()
        people = [await desk.interpreter(["uk"]) for _ in range(6)]
        booking = await book(counsellor)
        results = await asyncio.gather(
            *(p.post(f"/api/bookings/{booking['id']}/claim") for p in people)
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [409] * 5
        assert {b["error"]["code"] for s, b in results if s == 409} == {"booking_taken"}
        winner = next(p for p, (s, _) in zip(people, results, strict=True) if s == 200)
        _status, body = await counsellor.get(f"/api/bookings/{booking['id']}")
        assert body["booking"]["state"] == "claimed"
        assert body["booking"]["interpreter"]["id"] == winner.id
        _, mine = await winner.get("/api/bookings")
        assert [b["id"] for b in mine["bookings"]] == [booking["id"]]

    async def test_the_counsellor_hears_of_the_claim_and_others_see_it_gone(self, desk):
        """The claim reaches the counsellor with the interpreter's name; other interpreters
        get it without the name, and it leaves their open bookings."""
        counsellor = await desk.counsellor()
        first, second = await desk.interpreter(["uk"]), await desk.interpreter(["uk"])
        booking = await book(counsellor)
        status, _ = await first.post(f"/api/bookings/{booking['id']}/claim")
        assert status == 200
        news = None
        while news is None or news["reason"] != "claimed":
            news = await counsellor.next_event("booking.updated")
        assert news["booking"]["interpreter"]["id"] == first.id
        other = None
        while other is None or other["reason"] != "claimed":
            other = await second.next_event("booking.updated")
        assert other["booking"]["interpreter"] is None
        status, body = await second.get("/api/bookings/open")
        assert body["bookings"] == []

    async def test_an_interpreter_cannot_hold_two_bookings_at_one_time(self, desk):
        """A claim overlapping one's claimed booking is 409 `booking_overlaps`."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        one = await book(counsellor)
        two = await book(counsellor, local_start="2026-11-27T10:30")
        assert (await interpreter.post(f"/api/bookings/{one['id']}/claim"))[0] == 200
        status, body = await interpreter.post(f"/api/bookings/{two['id']}/claim")
        assert (status, body["error"]["code"]) == (409, "booking_overlaps")


class TestWhoHears:
    async def test_booking_news_reaches_nobody_it_is_not_about(self, desk):
        """Another counsellor, an interpreter of another language, finance and management
        hear nothing of a booking's life (made, claimed, cancelled); the admins only once
        it is escalated."""
        counsellor, stranger = await desk.counsellor(), await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        others = [
            stranger,
            await desk.interpreter(["fa"]),
            await desk._person(await desk.factory.user(Role.FINANCE)),
            await desk._person(await desk.factory.user(Role.MANAGEMENT)),
            await admin_person(desk),
        ]
        booking = await book(counsellor)
        await interpreter.post(f"/api/bookings/{booking['id']}/claim")
        await counsellor.delete(f"/api/bookings/{booking['id']}")
        for _ in range(3):
            await interpreter.next_event("booking.updated")
        for person in others:
            await person.no_event("booking.updated")
        for person in others[:4]:
            status, _ = await person.get(f"/api/bookings/{booking['id']}")
            assert status in (403, 404)


class TestCancelAndGiveBack:
    async def test_giving_back_before_the_cut_off_opens_it_again(self, desk):
        """Given back a day ahead: open again, and the counsellor and other interpreters
        hear of it; after the cut-off 409 `too_late_to_give_back`."""
        counsellor = await desk.counsellor()
        first, second = await desk.interpreter(["uk"]), await desk.interpreter(["uk"])
        booking = await book(counsellor, local_start="2026-11-28T10:00")
        await first.post(f"/api/bookings/{booking['id']}/claim")
        status, body = await first.post(f"/api/bookings/{booking['id']}/give-back")
        assert (status, body["booking"]["state"]) == (200, "open")
        reasons = []
        while "given_back" not in reasons:
            reasons.append((await counsellor.next_event("booking.updated"))["reason"])
        status, body = await second.get("/api/bookings/open")
        assert [b["id"] for b in body["bookings"]] == [booking["id"]]
        await second.post(f"/api/bookings/{booking['id']}/claim")
        desk.factory.clock.set(datetime(2026, 11, 28, 7, 0, tzinfo=UTC))  # 2 h before
        status, body = await second.post(f"/api/bookings/{booking['id']}/give-back")
        assert (status, body["error"]["code"]) == (409, "too_late_to_give_back")
        status, body = await first.post(f"/api/bookings/{booking['id']}/give-back")
        assert status == 404

    async def test_a_cancelled_booking_tells_its_interpreter_and_cannot_be_claimed(self, desk):
        """Cancelling a claimed booking reaches its interpreter; it leaves both lists and a
        later claim is 409 `booking_cancelled`."""
        counsellor = await desk.counsellor()
        interpreter, other = await desk.interpreter(["uk"]), await desk.interpreter(["uk"])
        booking = await book(counsellor)
        await interpreter.post(f"/api/bookings/{booking['id']}/claim")
        status, body = await counsellor.delete(f"/api/bookings/{booking['id']}")
        assert (status, body["booking"]["state"]) == (200, "cancelled")
        news = None
        while news is None or news["reason"] != "cancelled":
            news = await interpreter.next_event("booking.updated")
        assert (await interpreter.get("/api/bookings"))[1]["bookings"] == []
        assert (await counsellor.get("/api/bookings"))[1]["bookings"] == []
        status, body = await other.post(f"/api/bookings/{booking['id']}/claim")
        assert (status, body["error"]["code"]) == (409, "booking_cancelled")
        status, body = await counsellor.delete(f"/api/bookings/{booking['id']}")
        assert (status, body["booking"]["state"]) == (200, "cancelled")

    async def test_nobody_else_cancels_or_gives_back(self, desk):
        """Another counsellor's cancel and another interpreter's give-back are 404."""
        counsellor, stranger = await desk.counsellor(), await desk.counsellor()
        interpreter, other = await desk.interpreter(["uk"]), await desk.interpreter(["uk"])
        booking = await book(counsellor)
        await interpreter.post(f"/api/bookings/{booking['id']}/claim")
        assert (await stranger.delete(f"/api/bookings/{booking['id']}"))[0] == 404
        assert (await other.post(f"/api/bookings/{booking['id']}/give-back"))[0] == 404


class TestDeadlines:
    async def test_reminders_a_day_and_a_quarter_hour_before(self, desk):
        """The sweep at 24 h and at 15 min before sends one reminder each to the counsellor
        and the interpreter; sweeping again sends nothing more."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        booking = await book(counsellor, local_start="2026-11-28T10:00")
        start = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
        await interpreter.post(f"/api/bookings/{booking['id']}/claim")
        await sweep_at(desk, start - timedelta(hours=25))
        for mark in (timedelta(hours=24), timedelta(minutes=15)):
            await sweep_at(desk, start - mark)
            for person in (counsellor, interpreter):
                news = None
                while news is None or news["reason"] != "reminder":
                    news = await person.next_event("booking.updated")
                assert news["booking"]["id"] == booking["id"]
            await sweep_at(desk, start - mark + timedelta(seconds=30))
            await counsellor.no_event("booking.updated")

    async def test_an_unclaimed_booking_escalates_and_widens(self, desk):
        """Two hours before, an unclaimed ar-SY booking is marked, the admin sees it among
        the unclaimed and hears of it, and ar-EG interpreters may now claim it."""
        counsellor = await desk.counsellor()
        admin = await admin_person(desk)
        await desk.interpreter(["ar-SY"])
        egyptian = await desk.interpreter(["ar-EG"])
        booking = await book(counsellor, "ar-SY")
        await sweep_at(desk, TOMORROW_AT - timedelta(hours=2, seconds=1))
        assert (await admin.get("/api/admin/bookings/unclaimed"))[1]["bookings"] == []
        await sweep_at(desk, TOMORROW_AT - timedelta(hours=2))
        news = await admin.next_event("booking.updated")
        assert (news["reason"], news["booking"]["escalated"]) == ("escalated", True)
        status, body = await admin.get("/api/admin/bookings/unclaimed")
        assert [b["id"] for b in body["bookings"]] == [booking["id"]]
        widened = await egyptian.next_event("booking.updated")
        assert widened["reason"] == "escalated"
        status, body = await egyptian.post(f"/api/bookings/{booking['id']}/claim")
        assert status == 200, body
        status, body = await admin.get("/api/admin/bookings/unclaimed")
        assert body["bookings"] == []


class TestStarting:
    @pytest.mark.dispatch_settings(offer_wave_size=3, offer_timeout_s=20)
    async def test_the_booked_interpreter_is_offered_first_then_the_others(self, desk):
        """At the time, the request goes to the booked interpreter alone; when that offer
        rings out, the next wave reaches the others."""
        counsellor = await desk.counsellor()
        booked = await desk.interpreter(["uk"], idle_since=TOMORROW_AT - timedelta(days=1))
        others = [
            await desk.interpreter(["uk"], idle_since=TOMORROW_AT - timedelta(days=3))
            for _ in range(2)
        ]
        booking = await book(counsellor)
        await booked.post(f"/api/bookings/{booking['id']}/claim")
        desk.factory.clock.set(TOMORROW_AT - timedelta(minutes=20))
        status, body = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert (status, body["error"]["code"]) == (409, "booking_not_due")
        desk.factory.clock.set(TOMORROW_AT - timedelta(minutes=5))
        status, body = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert status == 201, body
        assert body["booking"]["state"] == "started"
        assert body["booking"]["request_id"] == body["request"]["id"]
        offer = await booked.next_event("offer")
        assert offer["offer"]["request_id"] == body["request"]["id"]
        for other in others:
            await other.no_event("offer")
        await desk.sweep(21)
        for other in others:
            assert (await other.next_event("offer"))["offer"]["request_id"] == body["request"]["id"]

    async def test_a_busy_booked_interpreter_leaves_the_first_wave_to_the_others(self, desk):
        """When the booked interpreter is not free, the normal waves go out at once; an
        unclaimed booking starts as a plain request."""
        counsellor = await desk.counsellor()
        booked = await desk.interpreter(["uk"])
        other = await desk.interpreter(["uk"])
        booking = await book(counsellor)
        await booked.post(f"/api/bookings/{booking['id']}/claim")
        await desk.factory.client.put(
            "/api/interpreters/me/status", json={"status": "away"}, headers=booked.auth()
        )
        desk.factory.clock.set(TOMORROW_AT)
        status, body = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert status == 201, body
        assert (await other.next_event("offer"))["offer"]["request_id"] == body["request"]["id"]

    async def test_a_cancelled_booking_does_not_start(self, desk):
        """Starting a cancelled booking is 409 `booking_cancelled`; cancelling a started
        one 409 `booking_started`."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"])
        cancelled, started = (
            await book(counsellor),
            await book(counsellor, local_start="2026-11-27T12:00"),
        )
        await counsellor.delete(f"/api/bookings/{cancelled['id']}")
        desk.factory.clock.set(TOMORROW_AT + timedelta(hours=2))
        status, body = await counsellor.post(f"/api/bookings/{cancelled['id']}/start")
        assert (status, body["error"]["code"]) == (409, "booking_cancelled")
        assert (await counsellor.post(f"/api/bookings/{started['id']}/start"))[0] == 201
        status, body = await counsellor.delete(f"/api/bookings/{started['id']}")
        assert (status, body["error"]["code"]) == (409, "booking_started")

    async def test_an_appointment_starts_once_while_its_request_is_asked(self, desk):
        """A second start while the first request is being offered is 409 `booking_started`
        (one appointment, one interpreter); once that request is withdrawn, it starts again."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["uk"])
        booking = await book(counsellor)
        desk.factory.clock.set(TOMORROW_AT)
        status, first = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert status == 201, first
        status, body = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert (status, body["error"]["code"]) == (409, "booking_started")
        status, body = await counsellor.delete(f"/api/requests/{first['request']['id']}")
        assert status == 200, body
        status, again = await counsellor.post(f"/api/bookings/{booking['id']}/start")
        assert status == 201, again
        assert again["request"]["id"] != first["request"]["id"]
