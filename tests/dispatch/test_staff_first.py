"""Staff first: colleagues in the house who speak the language are offered a request
before external interpreters; the request escalates by itself after the pool's time."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlmodel import col

from accounts.models import Role
from interpreters.models import IN_HOUSE_POOL, InterpreterPool
from tests.dispatch.conftest import Desk, Person
from tests.factories import make_interpreter, set_presence


async def colleague(desk: Desk, languages: list[str], status: str = "available") -> Person:
    """A counsellor who also interprets: an in-house profile on a counsellor's account."""
    user = await desk.factory.user(Role.COUNSELLOR)
    await make_interpreter(desk.factory, languages, user=user, pool_id=IN_HOUSE_POOL, status=status)
    return await desk._person(user)


async def escalation_after(db, seconds: int) -> None:
    """The in-house pool's escalation time, as an admin sets it."""
    async with db.write() as session:
        await session.exec(
            update(InterpreterPool)
            .where(col(InterpreterPool.id) == IN_HOUSE_POOL)
            .values(escalation_s=seconds)
        )


async def next_tier(person: Person, tier: str) -> dict:
    """The counsellor's next request.updated naming this tier."""
    while True:
        event = await person.next_event("request.updated")
        if event["request"].get("tier") == tier:
            return event["request"]


@pytest.mark.dispatch_settings(offer_timeout_s=60)
async def test_escalates_from_staff_to_external_after_the_pools_time(desk, db):
    """Only the colleague is asked for the pool's escalation time (here 7 s); then the
    request goes to the external pool without the counsellor doing anything, and the
    counsellor's status says so."""
    await escalation_after(db, 7)
    staff = await colleague(desk, ["ar"])
    external = await desk.interpreter(["ar"])
    counsellor = await desk.counsellor()
    req = await desk.ask(counsellor, "ar")
    assert (req["state"], req["tier"]) == ("offering", "in_house")
    offer = (await staff.next_event("offer"))["offer"]
    await external.no_event("offer")
    await desk.sweep(6)
    await external.no_event("offer")
    await desk.sweep(1)
    revoked = await staff.next_event("offer.revoked")
    assert (revoked["offer_id"], revoked["reason"]) == (offer["id"], "expired")
    assert (await external.next_event("offer"))["offer"]["request_id"] == req["id"]
    escalated = await next_tier(counsellor, "external")
    assert (escalated["state"], escalated["waves"]) == ("offering", 2)


async def test_a_colleague_who_accepts_before_the_escalation_takes_the_call(desk, db):
    """A colleague accepting within the escalation time gets the call; nobody external is
    ever asked."""
    staff = await colleague(desk, ["ar"])
    external = await desk.interpreter(["ar"])
    counsellor = await desk.counsellor()
    req = await desk.ask(counsellor, "ar")
    offer = (await staff.next_event("offer"))["offer"]
    await desk.sweep(10)
    status, body = await staff.post(f"/api/offers/{offer['id']}/accept")
    assert status == 200, body
    assert (body["call"]["request_id"], body["call"]["interpreter"]["id"]) == (
        req["id"],
        staff.id,
    )
    await desk.sweep(30)
    await external.no_event("offer")


async def test_no_colleague_free_goes_external_at_once(desk):
    """When no colleague of the language is available, external interpreters are asked at
    once: nobody waits for staff who are not there."""
    await colleague(desk, ["ar"], status="away")
    await colleague(desk, ["uk"])
    external = await desk.interpreter(["ar"])
    req = await desk.ask(await desk.counsellor(), "ar")
    assert (req["state"], req["tier"]) == ("offering", "external")
    assert (await external.next_event("offer"))["offer"]["request_id"] == req["id"]


async def test_a_colleague_declining_sends_it_external_at_once(desk):
    """When every colleague asked says no, the external pool is asked without waiting."""
    staff = await colleague(desk, ["ar"])
    external = await desk.interpreter(["ar"])
    req = await desk.ask(await desk.counsellor(), "ar")
    offer = (await staff.next_event("offer"))["offer"]
    status, _ = await staff.post(f"/api/offers/{offer['id']}/decline")
    assert status in (200, 204)
    assert (await external.next_event("offer"))["offer"]["request_id"] == req["id"]


async def test_own_request_is_never_offered_to_oneself(desk, factory):
    """A colleague who asks for their own language is not offered their own request, on
    the first wave nor from the queue when they become free."""
    staff = await colleague(desk, ["ar"])
    req = await desk.ask(staff, "ar")
    assert req["state"] == "queued"
    await staff.no_event("offer")
    # Another colleague's request reaches them as usual.
    other = await desk.ask(await desk.counsellor(), "ar")
    assert (await staff.next_event("offer"))["offer"]["request_id"] == other["id"]
    external = await desk.interpreter(["ar"], status="away")
    await set_presence(factory, external.user, "available")
    assert (await external.next_event("offer"))["offer"]["request_id"] == req["id"]


async def test_a_colleague_acts_as_interpreter_only_with_a_profile(desk, client):
    """A counsellor with an in-house profile may use the interpreter's operations and
    socket; a counsellor without one may not."""
    staff = await colleague(desk, ["ar"])
    plain = await desk.counsellor()
    status, body = await staff.get("/api/interpreters/me")
    assert status == 200, body
    status, _ = await plain.get("/api/interpreters/me")
    assert status == 403
    ws = await client.ws_connect("/ws?as=interpreter", headers=staff.auth())
    hello = await ws.receive_json(timeout=5)
    assert hello["user"]["role"] == "interpreter"
    await ws.close()
    resp = await client.get("/ws?as=interpreter", headers=plain.auth())
    assert resp.status == 403


async def test_a_colleague_never_claims_their_own_booking(desk):
    """A colleague who interprets sees and may claim others' bookings of their language,
    never their own appointment."""
    from tests.dispatch.test_bookings import book

    staff = await colleague(desk, ["ar"])
    own = await book(staff, "ar")
    other = await book(await desk.counsellor(), "ar")
    status, body = await staff.get("/api/bookings/open")
    assert status == 200, body
    assert [b["id"] for b in body["bookings"]] == [other["id"]]
    status, _ = await staff.post(f"/api/bookings/{own['id']}/claim")
    assert status == 404
    status, body = await staff.post(f"/api/bookings/{other['id']}/claim")
    assert status == 200, body
