"""The queue, presence effects, policies, preferences and language variants, end to end."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from calls.models import Call, CallState
from infra import jsonio
from infra.appkeys import BUS
from infra.bus import user_channel
from interpreters.models import Interpreter, Presence
from signaling.hub import Connection
from signaling.keys import HUB
from tests.dispatch.conftest import minutes_ago, status_of
from tests.factories import make_interpreter, refresh_presence_of, set_presence, sweep_presence_of
from wire.server import OfferRevocation


async def until_state(person, state: str) -> dict:
    """The next request.updated of this person with the given state."""
    while True:
        event = await person.next_event("request.updated")
        if event["request"]["state"] == state:
            return event["request"]


async def accept_next_offer(person) -> dict:
    """Wait for an offer and accept it; returns the call."""
    offer = (await person.next_event("offer"))["offer"]
    status, body = await person.post(f"/api/offers/{offer['id']}/accept")
    assert status == 200, body
    return body["call"]


class TestQueue:
    async def test_position_and_assignment_when_an_interpreter_comes_online(self, desk, factory):
        """Requests queue in order; an interpreter going available gets the oldest first."""
        first_c, second_c = await desk.counsellor(), await desk.counsellor()
        interpreter = await desk.interpreter(["ar"], status="away")
        first = await desk.ask(first_c, "ar")
        second = await desk.ask(second_c, "ar")
        assert (first["state"], first["queue_position"]) == ("queued", 1)
        assert (second["state"], second["queue_position"]) == ("queued", 2)
        await set_presence(factory, interpreter.user, "available")
        offer = (await interpreter.next_event("offer"))["offer"]
        assert offer["request_id"] == first["id"]
        assert (await until_state(first_c, "offering"))["id"] == first["id"]
        moved = await second_c.next_event("request.updated")
        while moved["request"]["queue_position"] != 1:
            moved = await second_c.next_event("request.updated")
        assert moved["request"]["state"] == "queued"

    async def test_eta_from_observed_waits_scaled_by_position_and_online(self, desk, factory, db):
        """No estimate before any wait was observed; then avg * position / interpreters online."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        await desk.ask(counsellor, "uk")
        factory.clock.advance(15)
        await accept_next_offer(interpreter)
        first_wait = 15.001  # the first sample is the average
        waiting = [await desk.counsellor() for _ in range(2)]
        queued = [await desk.ask(c, "uk") for c in waiting]
        assert queued[0]["queue_position"] == 1
        assert queued[0]["eta_s"] == pytest.approx(first_wait, abs=1)
        assert queued[1]["eta_s"] == pytest.approx(2 * first_wait, abs=1)
        _, body = await waiting[1].get(f"/api/requests/{queued[1]['id']}")
        assert body["request"]["eta_s"] == queued[1]["eta_s"]
        # A second interpreter online halves the waits.
        helper = await desk.interpreter(["uk"], status="away")
        async with db.write() as session:
            await session.exec(
                update(Interpreter)
                .where(Interpreter.user_id == helper.id)
                .values(status=Presence.BUSY.value)
            )
        _status, body = await waiting[1].get(f"/api/requests/{queued[1]['id']}")
        assert body["request"]["eta_s"] == pytest.approx(first_wait, abs=1)

    async def test_queue_figures_for_the_languages_list(self, desk, client):
        """The queue figures dispatch gives the roster count queued requests per language."""
        from infra.appkeys import CLOCK, DATABASE
        from interpreters.keys import QUEUE_FIGURES

        await desk.interpreter(["ti"], status="away")
        for _ in range(2):
            await desk.ask(await desk.counsellor(), "ti")
        async with client.app[DATABASE].read() as session:
            figures = await client.app[QUEUE_FIGURES](session, client.app[CLOCK].now())
        assert figures["ti"][0] == 2

    async def test_wrap_up_ending_makes_available_and_offers_the_queue(
        self, desk, factory, db, settings
    ):
        """When wrap-up runs out the interpreter is available and gets the oldest request."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        until = factory.clock.now() + timedelta(seconds=settings.wrap_up_s)
        async with db.write() as session:
            await session.exec(
                update(Interpreter)
                .where(Interpreter.user_id == interpreter.id)
                .values(status=Presence.WRAP_UP.value, wrap_up_until=until)
            )
        req = await desk.ask(counsellor, "ar")
        assert req["state"] == "queued"
        await desk.sweep(settings.wrap_up_s - 1)
        assert await status_of(db, interpreter.id) == "wrap_up"
        await desk.sweep(1)
        presence = await interpreter.next_event("presence.updated")
        assert (presence["status"], presence["reason"]) == ("available", "wrap_up_ended")
        assert (await interpreter.next_event("offer"))["offer"]["request_id"] == req["id"]

    async def test_interpreters_gone_together_move_the_queue_once(
        self, desk, factory, db, settings
    ):
        """When the grace period of several interpreters runs out at once (their instance
        died), one sweep sets them all offline and a waiting counsellor hears the longer
        expected wait in one update."""
        interpreter = await desk.interpreter(["uk"])
        await desk.ask(await desk.counsellor(), "uk")
        factory.clock.advance(15)
        await accept_next_offer(interpreter)  # one observed wait (15 s); now busy, online
        gone = [await make_interpreter(factory, ["uk"], status="wrap_up") for _ in range(3)]
        counsellor = await desk.counsellor()
        queued = await desk.ask(counsellor, "uk")
        assert (queued["state"], queued["eta_s"]) == ("queued", 4)  # 15 s * 1 / 4 online
        assert (await counsellor.next_event("request.updated"))["request"]["eta_s"] == 4
        await refresh_presence_of(factory.client.app)  # they have no socket: the grace starts
        factory.clock.advance(settings.presence_grace_s + 1)
        swept = await sweep_presence_of(factory.client.app)
        assert sorted(swept) == sorted(user.id for user in gone)
        for user in gone:
            assert await status_of(db, user.id) == "offline"
        update = (await counsellor.next_event("request.updated"))["request"]
        assert (update["id"], update["eta_s"]) == (queued["id"], 15)  # 15 s * 1 / 1 online
        await counsellor.no_event("request.updated")


class TestAutoAway:
    @pytest.mark.dispatch_settings(offer_wave_size=1, missed_offers_before_away=2)
    async def test_two_missed_offers_in_a_row_set_away(self, desk, settings, db):
        """An interpreter who lets two offers in a row run out is set away, and their page
        is told why (it says so)."""
        counsellor = await desk.counsellor()
        sleepy = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        for _ in range(2):
            assert (await sleepy.next_event("offer"))["offer"]["request_id"] == req["id"]
            await desk.sweep(settings.offer_timeout_s)
            assert (await sleepy.next_event("offer.revoked"))["reason"] == "expired"
        presence = await sleepy.next_event("presence.updated")
        assert (presence["status"], presence["reason"]) == ("away", "missed_offers")
        assert await status_of(db, sleepy.id) == "away"
        assert (await until_state(counsellor, "queued"))["id"] == req["id"]

    @pytest.mark.dispatch_settings(offer_wave_size=1, missed_offers_before_away=2)
    async def test_declining_resets_the_run_of_misses(self, desk, settings, db):
        """A decline between two misses keeps the interpreter available."""
        counsellor = await desk.counsellor()
        person = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        await person.next_event("offer")
        await desk.sweep(settings.offer_timeout_s)
        again = (await person.next_event("offer"))["offer"]
        assert (await person.post(f"/api/offers/{again['id']}/decline"))[0] == 204
        await desk.ask(await desk.counsellor(), "ar")
        await person.next_event("offer")
        await desk.sweep(settings.offer_timeout_s)
        await person.next_event("offer.revoked")
        assert await status_of(db, person.id) == "available"


class TestPolicies:
    @pytest.mark.dispatch_settings(offer_wave_size=1)
    async def test_longest_idle_wave_of_one_goes_to_the_longest_idle(self, desk, factory):
        """With waves of one, only the longest idle interpreter is offered."""
        counsellor = await desk.counsellor()
        fresh = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 1))
        rested = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 90))
        await desk.ask(counsellor, "ar")
        await rested.next_event("offer")
        await fresh.no_event("offer")

    @pytest.mark.dispatch_settings(matching_policy="ring_all", offer_wave_size=1)
    async def test_ring_all_offers_everyone_at_once(self, desk):
        """ring_all offers every available speaker of the language at once."""
        counsellor = await desk.counsellor()
        people = [await desk.interpreter(["ar"]) for _ in range(4)]
        await desk.ask(counsellor, "ar")
        for person in people:
            await person.next_event("offer")

    @pytest.mark.dispatch_settings(matching_policy="fewest_minutes_today", offer_wave_size=1)
    async def test_fewest_minutes_today_goes_to_who_earned_least(self, desk, factory, db):
        """The interpreter with fewer call minutes today is offered, even if idle shorter."""
        counsellor = await desk.counsellor()
        worked = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 90))
        idle = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 5))
        now = factory.clock.now()
        async with db.write() as session:
            from dispatch.models import InterpretationRequest, RequestState

            old = InterpretationRequest(
                counsellor_id=counsellor.id,
                organization_id=counsellor.user.organization_id,
                language="ar",
                state=RequestState.ACCEPTED,
                created_at=now - timedelta(hours=2),
                updated_at=now,
                expires_at=now,
            )
            session.add(old)
            await session.flush()
            session.add(
                Call(
                    request_id=old.id,
                    counsellor_id=counsellor.id,
                    interpreter_id=worked.id,
                    organization_id=counsellor.user.organization_id,
                    language="ar",
                    state=CallState.ENDED,
                    created_at=now - timedelta(hours=2),
                    connected_at=now - timedelta(hours=2),
                    ended_at=now - timedelta(minutes=90),
                )
            )
        await desk.ask(counsellor, "ar")
        await idle.next_event("offer")
        await worked.no_event("offer")


class TestPreferences:
    async def test_soft_preference_holds_then_relaxes(self, desk, factory, settings):
        """Only matching interpreters are offered until the relax time; then everyone."""
        counsellor = await desk.counsellor()
        male = await desk.interpreter(["fa-AF"], gender="male")
        req = await desk.ask(counsellor, "fa-AF", gender="female")
        assert req["state"] == "queued"
        assert req["preferences"]["gender"] == "female"
        await male.no_event("offer")
        await desk.sweep(settings.preference_relax_s)
        assert (await male.next_event("offer"))["offer"]["request_id"] == req["id"]

    async def test_soft_preference_prefers_the_match(self, desk, factory):
        """While the wish holds, a matching interpreter is offered and others are not."""
        counsellor = await desk.counsellor()
        male = await desk.interpreter(["fa-AF"], gender="male", idle_since=minutes_ago(factory, 60))
        female = await desk.interpreter(["fa-AF"], gender="female")
        await desk.ask(counsellor, "fa-AF", gender="female")
        await female.next_event("offer")
        await male.no_event("offer")

    async def test_required_preference_never_relaxes(self, desk, settings):
        """A required wish is never relaxed: the request waits for a match."""
        counsellor = await desk.counsellor()
        male = await desk.interpreter(["fa-AF"], gender="male")
        req = await desk.ask(counsellor, "fa-AF", gender="female", required=True)
        await desk.sweep(settings.preference_relax_s + 1)
        await male.no_event("offer")
        _status, body = await counsellor.get(f"/api/requests/{req['id']}")
        assert body["request"]["state"] == "queued"
        assert body["request"]["preferences"]["required"] is True

    async def test_specialization_is_matched(self, desk, factory):
        """A request for a medical interpreter goes to one with that specialisation."""
        counsellor = await desk.counsellor()
        general = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 60))
        medic = await desk.interpreter(["ar"], specializations=["medical"])
        await desk.ask(counsellor, "ar", specialization="medical")
        await medic.next_event("offer")
        await general.no_event("offer")

    async def test_queued_wish_waits_for_a_match_coming_online(self, desk, factory):
        """A matching interpreter coming online gets a queued request with a wish; others don't."""
        counsellor = await desk.counsellor()
        male = await desk.interpreter(["ar"], gender="male", status="away")
        female = await desk.interpreter(["ar"], gender="female", status="away")
        req = await desk.ask(counsellor, "ar", gender="female")
        await set_presence(factory, male.user, "available")
        await male.no_event("offer")
        await set_presence(factory, female.user, "available")
        assert (await female.next_event("offer"))["offer"]["request_id"] == req["id"]


class TestLanguageVariants:
    async def test_plain_tag_is_served_by_a_regional_variant(self, desk):
        """A request for ar is served by an ar-SY interpreter."""
        counsellor = await desk.counsellor()
        syrian = await desk.interpreter(["ar-SY"])
        await desk.ask(counsellor, "ar")
        await syrian.next_event("offer")

    @pytest.mark.dispatch_settings(offer_wave_size=1)
    async def test_variant_prefers_itself_then_falls_back_to_the_plain_tag(self, desk, factory):
        """A request for ar-SY goes to ar-SY first, to ar only when no ar-SY is free."""
        counsellor = await desk.counsellor()
        plain = await desk.interpreter(["ar"], idle_since=minutes_ago(factory, 90))
        syrian = await desk.interpreter(["ar-SY"], idle_since=minutes_ago(factory, 1))
        await desk.ask(counsellor, "ar-SY")
        await syrian.next_event("offer")
        await plain.no_event("offer")
        await desk.ask(await desk.counsellor(), "ar-SY")
        await plain.next_event("offer")

    async def test_other_variant_does_not_serve(self, desk):
        """An ar-EG interpreter does not serve an ar-SY request: unknown language."""
        counsellor = await desk.counsellor()
        await desk.interpreter(["ar-EG"])
        status, body = await counsellor.post("/api/requests", {"language": "ar-SY"})
        assert (status, body["error"]["code"]) == (422, "unknown_language")

    async def test_queued_plain_request_goes_to_a_variant_coming_online(self, desk, factory):
        """A queued ar request is offered to an ar-SY interpreter who becomes available."""
        counsellor = await desk.counsellor()
        syrian = await desk.interpreter(["ar-SY"], status="away")
        req = await desk.ask(counsellor, "ar")
        await set_presence(factory, syrian.user, "available")
        assert (await syrian.next_event("offer"))["offer"]["request_id"] == req["id"]


class TestReconnect:
    async def test_after_a_gap_in_the_bus_open_sockets_learn_what_ended_meanwhile(
        self, desk, client, db, clock, settings
    ):
        """A cancel whose news was lost (as in a gap of the bus) reaches the sockets that
        stayed open when the hub re-syncs them: the counsellor's request ends, the
        interpreter's offer is revoked and their status repeated."""
        from dispatch.service import cancel_request
        from signaling.keys import HUB

        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        since = clock.now()
        async with db.write() as session:
            await cancel_request(session, req["id"], counsellor.user.id, clock.now(), settings)
        client.app[HUB].resync(since)  # nothing published the cancel: only this tells
        ended = await until_state(counsellor, "cancelled")
        assert ended["id"] == req["id"]
        revoked = await interpreter.next_event("offer.revoked")
        assert (revoked["offer_id"], revoked["reason"]) == (offer["id"], "cancelled")
        assert (await interpreter.next_event("presence.updated"))["status"] == "available"

    async def test_news_published_while_the_state_is_read_comes_after_it(self, desk, factory):
        """A new socket's state (its pending offer) is not sent after news published while
        it was read (the offer's revocation): the page ends without the offer."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        app = factory.client.app
        bus = app[BUS]
        heard = asyncio.Event()
        listening = await bus.subscribe(user_channel(interpreter.id), lambda *_: heard.set())

        async def revoked_meanwhile(conn: Connection) -> None:
            # As if the counsellor withdrew the request just after the state was read.
            if conn.user_id == interpreter.id and not heard.is_set():
                revocation = OfferRevocation(offer_id=offer["id"], reason="cancelled")
                await bus.publish(user_channel(interpreter.id), jsonio.dumps(revocation))
                await heard.wait()

        app[HUB].on_connect.insert(0, revoked_meanwhile)
        try:
            ws = await factory.socket(interpreter.token)
            seen: list[str] = []
            while "offer.revoked" not in seen:
                msg = await ws.receive_json(timeout=5)
                seen.append(msg["type"])
        finally:
            app[HUB].on_connect.remove(revoked_meanwhile)
            await listening.cancel()
        about_the_offer = [kind for kind in seen if kind.startswith("offer")]
        assert about_the_offer == ["offer", "offer.revoked"]
        await ws.close()

    async def test_new_sockets_get_the_current_requests_and_offers(self, desk, factory):
        """A reconnecting counsellor gets their open requests, an interpreter their offers."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["ar"])
        req = await desk.ask(counsellor, "ar")
        offer = (await interpreter.next_event("offer"))["offer"]
        counsellor.ws = await factory.socket(counsellor.token)
        interpreter.ws = await factory.socket(interpreter.token)
        assert (await counsellor.next_event("request.updated"))["request"]["id"] == req["id"]
        assert (await interpreter.next_event("offer"))["offer"]["id"] == offer["id"]
        await interpreter.post(f"/api/offers/{offer['id']}/accept")
        interpreter.ws = await factory.socket(interpreter.token)
        await interpreter.no_event("offer")
