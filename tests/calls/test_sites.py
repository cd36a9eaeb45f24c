"""A request, its call, a consultation room and the usage records carry the site the
counsellor works at when they ask: moving the counsellor later changes only what they ask
for from then on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from accounts.models import Role
from billing.models import UsageRecord
from calls.models import Call, Room
from dispatch.models import InterpretationRequest
from tests.calls.conftest import receive_type
from tests.calls.test_consultations import join, open_room
from tests.dispatch.conftest import Desk, Person
from tests.factories import Factory


@pytest.fixture
def desk(factory: Factory) -> Desk:
    return Desk(factory)


async def counsellor_at(desk: Desk, organization: Any, site: Any) -> Person:
    user = await desk.factory.user(Role.COUNSELLOR, organization=organization, site=site)
    return await desk._person(user)


async def talk_and_hang_up(factory: Factory, counsellor: Person, interpreter: Person) -> str:
    """The interpreter takes the counsellor's offer, both connect, talk a minute, the
    counsellor hangs up; the call's id."""
    offer = (await interpreter.next_event("offer"))["offer"]
    status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
    assert status == 200, body
    call_id = body["call"]["id"]
    for person in (counsellor, interpreter):
        await person.ws.send_json({"type": "call.join", "call_id": call_id})
        await receive_type(person.ws, "call.joined")
    for person in (counsellor, interpreter):
        await person.ws.send_json({"type": "call.media", "call_id": call_id, "state": "connected"})
    while (await receive_type(counsellor.ws, "call.updated"))["call"]["state"] != "connected":
        pass
    factory.clock.advance(60)
    status, body = await counsellor.post(f"/api/calls/{call_id}/hangup")
    assert status == 200, body
    return call_id


async def carried(factory: Factory, call_id: str) -> tuple[Any, Any, Any, Any]:
    """The site of the call's request, of the call, and the record's site id and name."""
    async with factory.db.read() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        request = await session.get(InterpretationRequest, call.request_id)
        record = await session.get(UsageRecord, call_id)
    assert request is not None
    assert record is not None
    return request.site_id, call.site_id, record.site_id, record.site


class TestSiteOfRequests:
    async def test_a_request_its_call_and_its_usage_carry_the_counsellors_site(self, desk, factory):
        """Asked at the Infopoint, billed to the Infopoint, by name too; after the counsellor
        moves to Friedensplatz their next call is Friedensplatz's and the first one's record
        stays as it was."""
        org = await factory.organization("MigraDo")
        infopoint = await factory.site(org, "Infopoint")
        centre = await factory.site(org, "Friedensplatz")
        counsellor = await counsellor_at(desk, org, infopoint)
        interpreter = await desk.interpreter(["ar"])

        await desk.ask(counsellor, "ar")
        first = await talk_and_hang_up(factory, counsellor, interpreter)
        assert await carried(factory, first) == (
            infopoint.id,
            infopoint.id,
            infopoint.id,
            "Infopoint",
        )

        admin = await factory.user(Role.ADMIN, organization=org)
        resp = await factory.client.patch(
            f"/api/admin/users/{counsellor.id}",
            json={"site_id": centre.id},
            headers={"Authorization": f"Bearer {await factory.token(admin)}"},
        )
        assert resp.status == 200, await resp.text()
        other = await desk.interpreter(["ar"])
        await desk.ask(counsellor, "ar")
        second = await talk_and_hang_up(factory, counsellor, other)
        assert await carried(factory, second) == (centre.id, centre.id, centre.id, "Friedensplatz")
        assert await carried(factory, first) == (infopoint.id,) * 3 + ("Infopoint",)

    async def test_a_counsellor_without_a_site_asks_for_none(self, desk, factory):
        """No site: the request, the call and the record carry none (an empty name)."""
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        await desk.ask(counsellor, "uk")
        call_id = await talk_and_hang_up(factory, counsellor, interpreter)
        assert await carried(factory, call_id) == (None, None, None, "")

    async def test_a_room_and_its_segments_carry_the_site_it_was_opened_at(self, desk, factory):
        """The room takes the counsellor's site when opened; each interpreter segment's
        request, call and record carry the room's."""
        org = await factory.organization()
        infopoint = await factory.site(org, "Infopoint")
        counsellor = await counsellor_at(desk, org, infopoint)
        interpreter = await desk.interpreter(["ar"])
        room = await open_room(counsellor)
        await join(counsellor.ws, room["id"])
        status, body = await counsellor.post(
            f"/api/rooms/{room['id']}/requests", {"language": "ar"}
        )
        assert status == 201, body
        offer = (await interpreter.next_event("offer"))["offer"]
        status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200, body
        await join(interpreter.ws, room["id"])
        for me, peer in ((counsellor, interpreter), (interpreter, counsellor)):
            await me.ws.send_json(
                {"type": "room.media", "room_id": room["id"], "peer": peer.id, "state": "connected"}
            )
        while (await counsellor.next_event("call.updated"))["call"]["state"] != "connected":
            pass
        factory.clock.advance(30)
        status, body = await counsellor.post(f"/api/rooms/{room['id']}/hangup")
        assert status == 200, body
        async with factory.db.read() as session:
            stored = await session.get(Room, room["id"])
            call = (await session.exec(select(Call).where(col(Call.room_id) == room["id"]))).one()
        assert stored is not None
        assert stored.site_id == infopoint.id
        assert await carried(factory, call.id) == (infopoint.id,) * 3 + ("Infopoint",)
