"""Consultation rooms through the front door: a counsellor's room, a guest invited by link,
an interpreter asked in through the usual dispatch, the three on real sockets, leaving,
the hand-over, and billing per interpreter segment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from billing.models import UsageRecord
from calls.consultation import polite
from calls.models import Call, ParticipantRole, RoomParticipant, RoomPresence
from signaling.consultations import CONSULTATIONS
from tests.calls.conftest import receive_type
from tests.dispatch.conftest import Desk, Person
from tests.factories import Factory, set_presence
from tests.waiting import eventually

CANDIDATE = {"candidate": None}


@pytest.fixture
def desk(factory: Factory) -> Desk:
    return Desk(factory)


async def open_room(counsellor: Person) -> dict[str, Any]:
    status, body = await counsellor.post("/api/rooms")
    assert status == 201, body
    return body["room"]


async def invitation(counsellor: Person, room_id: str) -> dict[str, Any]:
    status, body = await counsellor.post(f"/api/rooms/{room_id}/invitations")
    assert status == 201, body
    return body


async def guest_joins(
    factory: Factory, token: str, name: str = "Amal"
) -> tuple[TestClient, dict[str, Any]]:
    """A fresh browser uses the invitation; returns it (holding the guest cookie)."""
    browser = await factory.new_client()
    resp = await browser.post(
        "/api/guest/session",
        json={"token": token, "name": name, "language": "ar"},
        headers=factory.headers(),
    )
    body = await resp.json()
    assert resp.status == 201, body
    return browser, body["guest"]


async def guest_socket(factory: Factory, browser: TestClient) -> ClientWebSocketResponse:
    ws = await browser.ws_connect("/ws", headers=factory.headers())
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    assert hello["user"]["role"] == "guest"
    return ws


async def join(ws: ClientWebSocketResponse, room_id: str) -> dict[str, Any]:
    await ws.send_json({"type": "room.join", "room_id": room_id, "ref": "j"})
    reply = await receive_type(ws, "room.joined", "error")
    assert reply["type"] == "room.joined", reply
    return reply


async def interpreter_in_room(desk: Desk, counsellor: Person, room_id: str) -> Person:
    """The counsellor asks for an Arabic interpreter from the room; one accepts."""
    interpreter = await desk.interpreter(["ar"])
    status, body = await counsellor.post(f"/api/rooms/{room_id}/requests", {"language": "ar"})
    assert status == 201, body
    assert body["request"]["room_id"] == room_id
    offer = (await interpreter.next_event("offer"))["offer"]
    status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
    assert status == 200, body
    return interpreter


class TestInvitations:
    async def test_a_guest_joins_once_by_link_and_reaches_only_their_room(self, desk, factory):
        """The link works once; the guest's cookie opens /api/guest/me and the socket, and
        every other API answers 401."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        made = await invitation(counsellor, room["id"])
        assert made["url"].endswith("/join/" + made["token"])
        browser, guest = await guest_joins(factory, made["token"])
        assert guest["id"].startswith("g")
        assert guest["room_id"] == room["id"]
        me = await (await browser.get("/api/guest/me")).json()
        assert me["guest"]["display_name"] == "Amal"
        assert (await browser.get("/api/me")).status == 401
        assert (await browser.get(f"/api/rooms/{room['id']}")).status == 401
        again = await browser.post(
            "/api/guest/session", json={"token": made["token"]}, headers=factory.headers()
        )
        assert (again.status, (await again.json())["error"]["code"]) == (410, "invitation_used")
        page = await browser.get("/join/" + made["token"])
        assert page.status == 200
        await browser.close()

    async def test_expired_revoked_and_unknown_invitations_are_refused(self, desk, factory):
        """An invitation past its time is 410, one replaced by a newer one is 404."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        first = await invitation(counsellor, room["id"])
        second = await invitation(counsellor, room["id"])
        browser = await factory.new_client()
        for token, status, code in (
            (first["token"], 404, "invitation_unknown"),
            ("no-such-token", 404, "invitation_unknown"),
        ):
            resp = await browser.post(
                "/api/guest/session", json={"token": token}, headers=factory.headers()
            )
            assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
        factory.clock.advance(7201)
        resp = await browser.post(
            "/api/guest/session", json={"token": second["token"]}, headers=factory.headers()
        )
        assert (resp.status, (await resp.json())["error"]["code"]) == (410, "invitation_expired")
        await browser.close()

    async def test_a_guest_of_one_room_cannot_join_another(self, desk, factory):
        """A guest's socket may join its own room only, and send nothing but room messages."""
        first, second = await desk.counsellor(), await desk.counsellor()
        room_a, room_b = await open_room(first), await open_room(second)
        browser, _ = await guest_joins(factory, (await invitation(first, room_a["id"]))["token"])
        ws = await guest_socket(factory, browser)
        await ws.send_json({"type": "room.join", "room_id": room_b["id"], "ref": "b"})
        reply = await receive_type(ws, "error")
        assert (reply["code"], reply["ref"]) == ("forbidden", "b")
        await ws.send_json({"type": "presence", "status": "available", "ref": "p"})
        assert (await receive_type(ws, "error"))["code"] == "forbidden"
        await join(ws, room_a["id"])
        await browser.close()

    async def test_a_second_guest_is_refused_and_the_first_stays(self, desk, factory):
        """The room holds one guest: a second invitation used while the client is in is 409
        `room_has_guest` and stays unused; the first guest stays in, and the invitation
        works once the first one has left and their cookie no longer brings them back."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        browser, guest = await guest_joins(
            factory, (await invitation(counsellor, room["id"]))["token"]
        )
        second = await invitation(counsellor, room["id"])
        other = await factory.new_client()
        resp = await other.post(
            "/api/guest/session", json={"token": second["token"]}, headers=factory.headers()
        )
        assert (resp.status, (await resp.json())["error"]["code"]) == (409, "room_has_guest")
        _, body = await counsellor.get(f"/api/rooms/{room['id']}")
        assert [p["id"] for p in body["room"]["participants"] if p["role"] == "guest"] == [
            guest["id"]
        ]
        ws = await guest_socket(factory, browser)
        await join(ws, room["id"])
        await ws.send_json({"type": "room.leave", "room_id": room["id"], "ref": "l"})
        await receive_type(ws, "room.updated")
        newcomer, _ = await guest_joins(factory, second["token"], name="Samir")
        _, body = await counsellor.get(f"/api/rooms/{room['id']}")
        guests = [p["display_name"] for p in body["room"]["participants"] if p["role"] == "guest"]
        assert guests == ["Samir"]
        assert (await browser.get("/api/guest/me")).status == 401
        for each in (browser, other, newcomer):
            await each.close()

    async def test_the_client_sees_the_rosters_languages_by_name_only(self, desk, factory):
        """With the link's token (used or not, while the room is open) the client gets the
        roster's languages, each in its own name, and no figures; a made-up token, or the
        link of a room that ended, gets nothing."""
        await desk.interpreter(["uk", "fa-AF"])
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        made = await invitation(counsellor, room["id"])
        stranger = await factory.new_client()

        async def languages(token: str) -> tuple[int, Any]:
            resp = await stranger.post(
                "/api/guest/languages",
                json={"token": token, "locale": "en"},
                headers=factory.headers(),
            )
            return resp.status, await resp.json()

        status, body = await languages(made["token"])
        assert status == 200
        by_tag = {entry["tag"]: entry for entry in body["languages"]}
        assert by_tag["uk"] == {"tag": "uk", "name": "Ukrainian", "autonym": "українська"}
        assert set(by_tag["fa-AF"]) == {"tag", "name", "autonym"}
        browser, _ = await guest_joins(factory, made["token"])
        assert (await languages(made["token"]))[0] == 200
        status, body = await languages("no-such-token")
        assert (status, body["error"]["code"]) == (404, "invitation_unknown")
        await counsellor.post(f"/api/rooms/{room['id']}/hangup")
        status, body = await languages(made["token"])
        assert (status, body["error"]["code"]) == (404, "invitation_unknown")
        await browser.close()
        await stranger.close()

    async def test_the_qr_code_is_an_svg_of_the_link(self, desk, factory):
        """The counsellor's page can show the link as a QR code, drawn by the server."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        made = await invitation(counsellor, room["id"])
        resp = await factory.client.get(made["qr_svg_url"], headers=counsellor.auth())
        assert resp.status == 200
        assert resp.content_type == "image/svg+xml"
        assert (await resp.text()).startswith("<svg")

    async def test_one_open_room_per_counsellor(self, desk):
        """A second room while one is open is 409 `room_open` naming it."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        status, body = await counsellor.post("/api/rooms")
        assert (status, body["error"]["code"], body["error"]["room_id"]) == (
            409,
            "room_open",
            room["id"],
        )


class TestThreeParties:
    async def test_counsellor_guest_and_interpreter_signal_each_other(self, desk, factory):
        """All three join; signals go to the one named in `to`; politeness follows rank."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        browser, guest = await guest_joins(
            factory, (await invitation(counsellor, room["id"]))["token"]
        )
        guest_ws = await guest_socket(factory, browser)
        joined = await join(counsellor.ws, room["id"])
        assert joined["polite_to"] == []
        joined = await join(guest_ws, room["id"])
        assert joined["polite_to"] == [counsellor.id]
        arrived = await receive_type(counsellor.ws, "room.participant")
        assert (arrived["participant"]["id"], arrived["participant"]["present"]) == (
            guest["id"],
            True,
        )
        assert arrived["polite"] is False

        interpreter = await interpreter_in_room(desk, counsellor, room["id"])
        joined = await join(interpreter.ws, room["id"])
        assert sorted(joined["polite_to"]) == sorted([counsellor.id, guest["id"]])
        roles = {p["role"] for p in joined["participants"]}
        assert roles == {"counsellor", "guest", "interpreter"}

        await guest_ws.send_json(
            {"type": "signal", "room_id": room["id"], "to": interpreter.id, "data": CANDIDATE}
        )
        relayed = await interpreter.next_event("signal")
        assert (relayed["room_id"], relayed["from"]) == (room["id"], guest["id"])
        await interpreter.ws.send_json(
            {
                "type": "signal",
                "room_id": room["id"],
                "to": "gnobody",
                "data": CANDIDATE,
                "ref": "s",
            }
        )
        assert (await interpreter.next_event("error"))["code"] == "forbidden"
        await browser.close()

    async def test_billing_runs_per_segment_from_both_sides_connected(self, desk, factory, db):
        """The interpreter's segment connects when it and the counsellor report their
        connection connected; the interpreter's leave ends it and bills it once, with the
        room's id; the room stays open for the counsellor and the guest."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        await join(counsellor.ws, room["id"])
        interpreter = await interpreter_in_room(desk, counsellor, room["id"])
        await join(interpreter.ws, room["id"])
        for me, peer in ((counsellor, interpreter), (interpreter, counsellor)):
            await me.ws.send_json(
                {"type": "room.media", "room_id": room["id"], "peer": peer.id, "state": "connected"}
            )
        while (await counsellor.next_event("call.updated"))["call"]["state"] != "connected":
            pass
        factory.clock.advance(90)
        await interpreter.ws.send_json({"type": "room.leave", "room_id": room["id"], "ref": "l"})
        left = await interpreter.next_event("room.updated")
        while left.get("ref") != "l":
            left = await interpreter.next_event("room.updated")
        assert left["room"]["state"] == "open"
        assert interpreter.id not in {p["id"] for p in left["room"]["participants"]}
        async with db.read() as session:
            call = (await session.exec(select(Call).where(col(Call.room_id) == room["id"]))).one()
            records = (
                await session.exec(
                    select(UsageRecord).where(col(UsageRecord.room_id) == room["id"])
                )
            ).all()
        assert (call.state, call.end_reason) == ("ended", "hangup")
        assert [(r.call_id, r.duration_s) for r in records] == [(call.id, 90)]

    async def test_the_counsellors_hang_up_ends_it_for_everyone(self, desk, factory):
        """Hang-up: the room ends, the guest's cookie opens nothing any more."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        browser, _ = await guest_joins(factory, (await invitation(counsellor, room["id"]))["token"])
        guest_ws = await guest_socket(factory, browser)
        await join(guest_ws, room["id"])
        status, body = await counsellor.post(f"/api/rooms/{room['id']}/hangup")
        assert (status, body["room"]["state"], body["room"]["end_reason"]) == (
            200,
            "ended",
            "hangup",
        )
        ended = await receive_type(guest_ws, "room.updated")
        while ended["room"]["state"] != "ended":
            ended = await receive_type(guest_ws, "room.updated")
        assert (await browser.get("/api/guest/me")).status == 401
        await browser.close()


class TestHandover:
    async def test_the_outgoing_interpreter_stays_until_the_incoming_joined(
        self, desk, factory, db
    ):
        """Hand-over: the request is offered again; the first interpreter's segment ends
        `handover` only when the second has joined the room."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        await join(counsellor.ws, room["id"])
        first = await interpreter_in_room(desk, counsellor, room["id"])
        await join(first.ws, room["id"])
        async with db.read() as session:
            call_id = (
                await session.exec(select(Call.id).where(col(Call.interpreter_id) == first.id))
            ).one()
        second = await desk.interpreter(["ar"])
        status, body = await first.post(f"/api/calls/{call_id}/handover", {})
        assert status == 202, body
        assert body["request"]["room_id"] == room["id"]
        offer = (await second.next_event("offer"))["offer"]
        status, _ = await second.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200
        async with db.read() as session:
            assert (await session.get(Call, call_id)).state != "ended"
        await join(second.ws, room["id"])
        ended = await first.next_event("call.updated")
        while ended["call"]["state"] != "ended":
            ended = await first.next_event("call.updated")
        assert ended["call"]["end_reason"] == "handover"
        await set_presence(factory, first.user, "available")

    async def test_the_incoming_interpreter_is_the_polite_one(self, desk, factory):
        """Both interpreters belong in the room between the accept and the incoming one's
        join: the outgoing one, back on its page, is impolite towards the incoming one,
        even when the accept was recorded by a server whose clock is behind."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        first = await interpreter_in_room(desk, counsellor, room["id"])
        await join(first.ws, room["id"])
        second = await desk.interpreter(["ar"])
        call_id = (await counsellor.get(f"/api/rooms/{room['id']}"))[1]["room"]["call_id"]
        status, _ = await first.post(f"/api/calls/{call_id}/handover", {})
        assert status == 202
        offer = (await second.next_event("offer"))["offer"]
        factory.clock.set(factory.clock.now() - timedelta(seconds=30))
        status, _ = await second.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200
        joined = await join(first.ws, room["id"])
        assert {p["id"] for p in joined["participants"]} >= {first.id, second.id}
        assert second.id not in joined["polite_to"]
        assert counsellor.id in joined["polite_to"]
        joined = await join(second.ws, room["id"])
        assert counsellor.id in joined["polite_to"]
        await set_presence(factory, first.user, "available")


class TestPoliteness:
    def test_who_came_in_is_polite(self):
        """Guest towards counsellor, interpreter towards both; of two interpreters the
        room's current segment, whichever was added first."""
        now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

        def row(role: ParticipantRole, call_id: str | None = None, at: int = 0) -> RoomParticipant:
            return RoomParticipant(
                room_id="r",
                participant_id=f"{role}{call_id}",
                role=role,
                call_id=call_id,
                added_at=now + timedelta(seconds=at),
            )

        counsellor, guest = row(ParticipantRole.COUNSELLOR), row(ParticipantRole.GUEST, at=5)
        outgoing = row(ParticipantRole.INTERPRETER, "c1", at=60)
        incoming = row(ParticipantRole.INTERPRETER, "c2", at=30)
        pairs = [(guest, counsellor), (incoming, outgoing)]
        pairs += [(i, other) for i in (outgoing, incoming) for other in (counsellor, guest)]
        for polite_one, other in pairs:
            assert polite(polite_one, other, "c2")
            assert not polite(other, polite_one, "c2")


class TestLeaveAndRejoin:
    async def test_a_guest_who_left_comes_back_while_the_room_is_open(self, desk, factory):
        """A guest's leave is not for good: past the grace, their cookie brings them back
        into the open room (a new socket, no new link); the counsellor sees them leave and
        come back."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        browser, guest = await guest_joins(
            factory, (await invitation(counsellor, room["id"]))["token"]
        )
        await join(counsellor.ws, room["id"])
        first = await guest_socket(factory, browser)
        await join(first, room["id"])
        assert (await counsellor.next_event("room.participant"))["participant"]["present"]
        await first.send_json({"type": "room.leave", "room_id": room["id"], "ref": "l"})
        await receive_type(first, "room.updated")
        gone = await counsellor.next_event("room.participant")
        assert (gone["participant"]["id"], gone["left"]) == (guest["id"], True)
        await first.close()
        factory.clock.advance(3600)
        assert (await browser.get("/api/guest/me")).status == 200
        again = await guest_socket(factory, browser)
        joined = await join(again, room["id"])
        assert guest["id"] in {p["id"] for p in joined["participants"]}
        assert joined["polite_to"] == [counsellor.id]
        back = await counsellor.next_event("room.participant")
        assert (back["participant"]["id"], back["participant"]["present"], back["left"]) == (
            guest["id"],
            True,
            False,
        )
        updated = await counsellor.next_event("room.updated")
        while guest["id"] not in {p["id"] for p in updated["room"]["participants"]}:
            updated = await counsellor.next_event("room.updated")
        await browser.close()

    async def test_each_participant_may_come_back_within_the_grace(self, desk, factory):
        """A guest's socket drops: the others see it absent, then present again when it
        rejoins; the room goes on."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        browser, guest = await guest_joins(
            factory, (await invitation(counsellor, room["id"]))["token"]
        )
        await join(counsellor.ws, room["id"])
        first = await guest_socket(factory, browser)
        await join(first, room["id"])
        assert (await counsellor.next_event("room.participant"))["participant"]["present"]
        await first.close()
        gone = await counsellor.next_event("room.participant")
        assert (gone["participant"]["id"], gone["participant"]["present"], gone["left"]) == (
            guest["id"],
            False,
            False,
        )
        again = await guest_socket(factory, browser)
        await join(again, room["id"])
        back = await counsellor.next_event("room.participant")
        assert (back["participant"]["id"], back["participant"]["present"]) == (guest["id"], True)
        await browser.close()

    async def test_an_interpreter_gone_past_the_grace_is_lost_and_the_room_stays(
        self, desk, factory, client, db
    ):
        """The interpreter's socket dropped and did not come back in time: the segment ends
        `lost` and the counsellor hears that the interpreter left; the room is still open."""
        counsellor = await desk.counsellor()
        room = await open_room(counsellor)
        await join(counsellor.ws, room["id"])
        interpreter = await interpreter_in_room(desk, counsellor, room["id"])
        await join(interpreter.ws, room["id"])
        await interpreter.ws.close()
        await factory.sockets_closed(interpreter.user)

        async def leave_recorded() -> bool:
            async with db.read() as session:
                rows = await session.exec(
                    select(RoomPresence).where(col(RoomPresence.participant_id) == interpreter.id)
                )
                return rows.first() is None

        await eventually(leave_recorded)
        factory.clock.advance(61)
        rooms = client.app[CONSULTATIONS]
        await rooms.heartbeat()  # the counsellor is still there: their socket says so
        await rooms.sweep(client.app)
        left = await counsellor.next_event("room.participant")
        while not left["left"]:
            left = await counsellor.next_event("room.participant")
        assert left["participant"]["id"] == interpreter.id
        async with db.read() as session:
            call = (await session.exec(select(Call).where(col(Call.room_id) == room["id"]))).one()
        assert (call.state, call.end_reason) == ("ended", "lost")
        status, body = await counsellor.get(f"/api/rooms/{room['id']}")
        assert (status, body["room"]["state"]) == (200, "open")
