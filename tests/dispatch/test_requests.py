"""Requests, offers and the call they end in, through HTTP and real sockets."""

from __future__ import annotations

import pytest
from sqlmodel import select

from accounts.models import Role
from calls.models import Call
from dispatch.models import InterpretationRequest
from tests.dispatch.conftest import minutes_ago, status_of


class TestHappyPath:
    async def test_request_offer_accept_makes_a_connecting_call(self, desk, factory, db):
        """The longest idle three are offered; the first accept makes the call, others revoked."""
        counsellor = await desk.counsellor()
        people = [
            await desk.interpreter(["ar"], idle_since=minutes_ago(factory, m))
            for m in (40, 30, 20, 10)
        ]
        req = await desk.ask(counsellor, "ar")
        assert req["state"] == "offering"
        offers = [(await p.next_event("offer"))["offer"] for p in people[:3]]
        await people[3].no_event("offer")
        assert {o["request_id"] for o in offers} == {req["id"]}
        assert offers[0]["language"] == "ar"
        assert offers[0]["organization"]["name"]
        assert offers[0]["expires_at"].endswith("Z")

        status, body = await people[1].post(f"/api/offers/{offers[1]['id']}/accept")
        assert status == 200, body
        call = body["call"]
        assert call["state"] == "connecting"
        assert call["request_id"] == req["id"]
        assert call["interpreter"]["id"] == people[1].id
        assert call["counsellor"]["id"] == counsellor.id

        for loser, offer in ((people[0], offers[0]), (people[2], offers[2])):
            revoked = await loser.next_event("offer.revoked")
            assert revoked == {"type": "offer.revoked", "offer_id": offer["id"], "reason": "taken"}
        updated = await counsellor.next_event("request.updated")
        while updated["request"]["state"] != "accepted":
            updated = await counsellor.next_event("request.updated")
        assert updated["request"]["call_id"] == call["id"]
        assert (await counsellor.next_event("call.updated"))["call"]["id"] == call["id"]
        assert (await people[1].next_event("call.updated"))["call"]["state"] == "connecting"
        assert await status_of(db, people[1].id) == "busy"
        assert await status_of(db, people[0].id) == "available"

    async def test_request_records_the_counsellors_organisation(self, desk, db):
        """The request and its call are billed to the organisation of the counsellor."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        req = await desk.ask(counsellor, "uk")
        offer = (await interpreter.next_event("offer"))["offer"]
        await interpreter.post(f"/api/offers/{offer['id']}/accept")
        async with db.read() as session:
            row = await session.get(InterpretationRequest, req["id"])
            call = (await session.exec(select(Call))).one()
        assert row.organization_id == counsellor.user.organization_id
        assert call.organization_id == counsellor.user.organization_id

    async def test_audio_only_is_carried_to_the_call(self, desk, db):
        """A request for audio only makes an audio-only call."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ti"])
        await desk.ask(counsellor, "ti", audio_only=True)
        offer = (await interpreter.next_event("offer"))["offer"]
        _, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert body["call"]["audio_only"] is True

    @pytest.mark.parametrize(
        "path",
        ["fast", pytest.param("plain", marks=pytest.mark.dispatch_settings(fast_paths=False))],
    )
    async def test_a_request_is_written_alike_on_the_fast_and_the_plain_path(
        self, desk, factory, db, path
    ):
        """What a new request stores and offers does not depend on `TOLK_FAST_PATHS`."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"], gender="female")
        req = await desk.ask(counsellor, "uk", gender="Female", audio_only=True)
        offer = (await interpreter.next_event("offer"))["offer"]
        assert offer["request_id"] == req["id"]
        assert offer["preferences"] == {
            "gender": "female",
            "specialization": None,
            "audio_only": True,
            "required": False,
        }
        async with db.read() as session:
            row = await session.get(InterpretationRequest, req["id"])
        assert row is not None
        assert (row.state, row.waves, row.language, row.gender) == ("offering", 1, "uk", "female")
        assert (row.counsellor_id, row.room_id, row.end_reason) == (counsellor.id, None, None)
        assert row.created_at == factory.clock.now()
        assert row.relax_at is not None
        assert row.relax_at > row.created_at

    async def test_a_second_request_of_the_same_counsellor_is_allowed(self, desk):
        """Two consultations at once are rare but real: both requests are taken."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["fa-AF"])
        first = await desk.ask(counsellor, "fa-AF")
        second = await desk.ask(counsellor, "prs")
        assert first["state"] == "offering"
        assert second["state"] == "queued"
        assert second["language"] == "fa-AF"


class TestBadInput:
    async def test_language_nobody_speaks_is_422_unknown_language(self, desk):
        """Asking for a language nobody in the roster speaks is refused."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["ar"])
        status, body = await counsellor.post("/api/requests", {"language": "ti"})
        assert status == 422
        assert body["error"]["code"] == "unknown_language"

    async def test_invalid_tag_and_missing_field_are_422(self, desk):
        """A tag that is no language, or no language at all, names the problem."""
        counsellor = await desk.counsellor()
        status, body = await counsellor.post("/api/requests", {"language": "not a tag!"})
        assert status == 422
        assert body["error"]["code"] == "invalid_language"
        status, body = await counsellor.post("/api/requests", {})
        assert status == 422
        assert body["error"]["fields"][0]["field"] == "language"

    async def test_unknown_specialization_is_422(self, desk):
        """A specialisation not on the admin's list is refused."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["ar"])
        status, body = await counsellor.post(
            "/api/requests", {"language": "ar", "preferences": {"specialization": "astrology"}}
        )
        assert status == 422
        assert body["error"]["code"] == "unknown_specialization"

    async def test_only_counsellors_ask(self, desk):
        """An interpreter cannot make a request."""
        interpreter = await desk.interpreter(["ar"])
        status, _body = await interpreter.post("/api/requests", {"language": "ar"})
        assert status == 403


class TestWhoSeesWhat:
    async def test_other_counsellor_gets_404_admin_sees_it(self, desk, factory):
        """Another counsellor can neither see nor cancel a request; an admin can see it."""
        owner, stranger = await desk.counsellor(), await desk.counsellor()
        await desk.interpreter(["ar"])
        req = await desk.ask(owner, "ar")
        assert (await stranger.get(f"/api/requests/{req['id']}"))[0] == 404
        assert (await stranger.delete(f"/api/requests/{req['id']}"))[0] == 404
        status, body = await owner.get(f"/api/requests/{req['id']}")
        assert status == 200
        assert body["request"]["state"] == "offering"
        admin = await factory.user(Role.ADMIN)
        admin_token = await factory.token(admin)
        resp = await factory.client.get(
            f"/api/requests/{req['id']}", headers={"Authorization": f"Bearer {admin_token}"}
        )
        assert resp.status == 200

    async def test_someone_elses_offer_is_404(self, desk):
        """An interpreter cannot accept or decline an offer made to someone else."""
        counsellor = await desk.counsellor()
        offered = await desk.interpreter(["ar"])
        other = await desk.interpreter(["uk"])
        await desk.ask(counsellor, "ar")
        offer = (await offered.next_event("offer"))["offer"]
        assert (await other.post(f"/api/offers/{offer['id']}/accept"))[0] == 404
        assert (await other.post(f"/api/offers/{offer['id']}/decline"))[0] == 404
        assert (await other.post("/api/offers/nope/accept"))[0] == 404


class TestOfferOutcomes:
    async def test_expired_offer_is_409_offer_expired(self, desk, factory, settings):
        """Accepting after the deadline is refused even before the sweeper ran."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        factory.clock.advance(settings.offer_timeout_s)
        status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_expired")
        await desk.sweep()
        assert (await interpreter.next_event("offer.revoked"))["reason"] == "expired"
        status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_expired")

    async def test_taken_offer_is_409_offer_taken(self, desk):
        """The second of two interpreters to accept is told it was taken."""
        counsellor = await desk.counsellor()
        first, second = await desk.interpreter(["ar"]), await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        a = (await first.next_event("offer"))["offer"]
        b = (await second.next_event("offer"))["offer"]
        assert (await first.post(f"/api/offers/{a['id']}/accept"))[0] == 200
        status, body = await second.post(f"/api/offers/{b['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_taken")

    async def test_accepting_twice_returns_the_same_call(self, desk):
        """A repeated click on accept answers with the call the first click made."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        _, first = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        status, again = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200
        assert again["call"]["id"] == first["call"]["id"]

    @pytest.mark.dispatch_settings(offer_wave_size=1)
    async def test_decline_sends_the_next_wave(self, desk, factory):
        """When the whole wave declined, the next interpreters are offered at once."""
        counsellor = await desk.counsellor()
        first = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 30))
        second = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 20))
        await desk.ask(counsellor, "ar")
        await second.no_event("offer")
        offer = (await first.next_event("offer"))["offer"]
        status, _ = await first.post(f"/api/offers/{offer['id']}/decline")
        assert status == 204
        assert (await second.next_event("offer"))["offer"]["request_id"] == offer["request_id"]
        await first.no_event("offer")
        status, body = await first.post(f"/api/offers/{offer['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_declined")

    @pytest.mark.dispatch_settings(offer_wave_size=1)
    async def test_timeout_sends_the_next_wave(self, desk, factory, settings):
        """An offer nobody answers runs out; the next wave goes to the next interpreter."""
        counsellor = await desk.counsellor()
        first = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 30))
        second = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 20))
        await desk.ask(counsellor, "ar")
        offer = (await first.next_event("offer"))["offer"]
        await desk.sweep(settings.offer_timeout_s - 1)
        await second.no_event("offer")
        await desk.sweep(1)
        assert (await first.next_event("offer.revoked"))["reason"] == "expired"
        nxt = (await second.next_event("offer"))["offer"]
        assert nxt["request_id"] == offer["request_id"]

    @pytest.mark.dispatch_settings(offer_wave_size=1)
    async def test_counsellor_hears_that_a_wave_was_not_accepted(self, desk, factory):
        """A declined wave followed by the next one is news for the counsellor (waves 2),
        so the page can say "not accepted, asking others"."""
        counsellor = await desk.counsellor()
        first = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 30))
        await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 20))
        req = await desk.ask(counsellor, "ar")
        assert req["waves"] == 1
        offer = (await first.next_event("offer"))["offer"]
        await first.post(f"/api/offers/{offer['id']}/decline")
        updated = (await counsellor.next_event("request.updated"))["request"]
        while updated["waves"] < 2:
            updated = (await counsellor.next_event("request.updated"))["request"]
        assert (updated["id"], updated["state"], updated["waves"]) == (req["id"], "offering", 2)

    async def test_decline_of_the_last_leaves_the_request_queued(self, desk):
        """When everyone declined, the request waits in the queue."""
        counsellor = await desk.counsellor()
        only = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        offer = (await only.next_event("offer"))["offer"]
        await only.post(f"/api/offers/{offer['id']}/decline")
        updated = await counsellor.next_event("request.updated")
        while updated["request"]["state"] != "queued":
            updated = await counsellor.next_event("request.updated")
        assert updated["request"]["id"] == req["id"]
        assert updated["request"]["queue_position"] == 1
        await only.no_event("offer")


class TestCancel:
    async def test_cancel_while_queued(self, desk):
        """A queued request is cancelled; the one behind it moves up."""
        counsellor, other = await desk.counsellor(), await desk.counsellor()
        await desk.interpreter(["ar"], status="away")
        first = await desk.ask(counsellor, "ar")
        second = await desk.ask(other, "ar")
        assert (first["queue_position"], second["queue_position"]) == (1, 2)
        status, body = await counsellor.delete(f"/api/requests/{first['id']}")
        assert status == 200
        assert body["request"]["state"] == "cancelled"
        moved = await other.next_event("request.updated")
        while moved["request"]["queue_position"] != 1:
            moved = await other.next_event("request.updated")

    async def test_cancel_while_offering_revokes_the_offers(self, desk):
        """Cancelling withdraws every pending offer with reason cancelled."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        assert (await counsellor.delete(f"/api/requests/{req['id']}"))[0] == 200
        revoked = await interpreter.next_event("offer.revoked")
        assert revoked == {"type": "offer.revoked", "offer_id": offer["id"], "reason": "cancelled"}
        status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_revoked")

    async def test_cancel_after_accept_or_twice_is_409(self, desk):
        """An accepted or already cancelled request cannot be cancelled."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        await interpreter.post(f"/api/offers/{offer['id']}/accept")
        status, body = await counsellor.delete(f"/api/requests/{req['id']}")
        assert (status, body["error"]["code"]) == (409, "not_cancellable")
        await desk.interpreter(["uk"])
        other = await desk.ask(counsellor, "uk")
        assert (await counsellor.delete(f"/api/requests/{other['id']}"))[0] == 200
        status, body = await counsellor.delete(f"/api/requests/{other['id']}")
        assert (status, body["error"]["code"]) == (409, "not_cancellable")

    async def test_cancel_after_expiry_is_409(self, desk, settings):
        """An expired request cannot be cancelled."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["ar"], status="away")
        req = await desk.ask(counsellor, "ar")
        await desk.sweep(settings.request_max_wait_s)
        status, body = await counsellor.delete(f"/api/requests/{req['id']}")
        assert (status, body["error"]["code"]) == (409, "not_cancellable")


class TestExpiry:
    async def test_request_expires_after_the_maximum_wait(self, desk, settings):
        """A request nobody takes expires, and its counsellor is told."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["ar"], status="away")
        req = await desk.ask(counsellor, "ar")
        await desk.sweep(settings.request_max_wait_s - 1)
        _status, body = await counsellor.get(f"/api/requests/{req['id']}")
        assert body["request"]["state"] == "queued"
        await desk.sweep(1)
        updated = await counsellor.next_event("request.updated")
        while updated["request"]["state"] != "expired":
            updated = await counsellor.next_event("request.updated")
        assert updated["request"]["end_reason"] == "max_wait"

    @pytest.mark.dispatch_settings(offer_timeout_s=60, request_max_wait_s=30)
    async def test_expiry_while_offering_revokes_the_offer(self, desk):
        """An offer still pending when its request expires is withdrawn as expired."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        await desk.sweep(30)
        revoked = await interpreter.next_event("offer.revoked")
        assert revoked == {"type": "offer.revoked", "offer_id": offer["id"], "reason": "expired"}
