"""A counsellor deactivated or a terminal revoked by an admin: their requests still waiting
end at once, as a cancel ends them (`cancelled`, end reason `deactivated`), so that no
interpreter accepts a call nobody will join; what was accepted stays as it was."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from accounts.models import Role
from billing.models import UsageRecord
from calls.models import Call
from tests.dispatch.conftest import Person
from tests.factories import Factory


async def an_admin(factory: Factory) -> dict[str, str]:
    """An admin's token headers."""
    admin = await factory.user(Role.ADMIN)
    return {"Authorization": f"Bearer {await factory.token(admin)}"}


async def deactivate(factory: Factory, admin: dict[str, str], user_id: str) -> None:
    resp = await factory.client.patch(
        f"/api/admin/users/{user_id}", json={"active": False}, headers=admin
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["user"]["active"] is False


async def request_as_admin_sees_it(
    factory: Factory, admin: dict[str, str], request_id: str
) -> dict[str, Any]:
    resp = await factory.client.get(f"/api/requests/{request_id}", headers=admin)
    assert resp.status == 200, await resp.text()
    request: dict[str, Any] = (await resp.json())["request"]
    return request


async def calls_and_usage(factory: Factory) -> tuple[int, int]:
    async with factory.db.read() as session:
        calls = (await session.exec(select(Call))).all()
        usage = (await session.exec(select(UsageRecord))).all()
    return len(calls), len(usage)


def ended_by_deactivation(request: dict[str, Any]) -> tuple[str, str | None]:
    return request["state"], request["end_reason"]


class TestDeactivatedCounsellor:
    async def test_their_waiting_requests_end_and_the_offers_are_withdrawn(self, desk, factory):
        """An offered request and a queued room request end `cancelled` with reason
        `deactivated`; both interpreters' offers are revoked (`cancelled`), an accept is
        409, nobody is offered anything else, and no call or usage is made."""
        admin = await an_admin(factory)
        counsellor = await desk.counsellor()
        first, second = await desk.interpreter(["ar"]), await desk.interpreter(["ar"])
        offered = await desk.ask(counsellor, "ar")
        offers = [(await p.next_event("offer"))["offer"] for p in (first, second)]
        assert {o["request_id"] for o in offers} == {offered["id"]}
        status, body = await counsellor.post("/api/rooms")
        assert status == 201, body
        status, body = await counsellor.post(
            f"/api/rooms/{body['room']['id']}/requests", {"language": "ar"}
        )
        assert status == 201, body
        in_room = body["request"]
        assert in_room["state"] == "queued"

        await deactivate(factory, admin, counsellor.id)

        for request in (offered, in_room):
            ended = await request_as_admin_sees_it(factory, admin, request["id"])
            assert ended_by_deactivation(ended) == ("cancelled", "deactivated")
        for interpreter, offer in zip((first, second), offers, strict=True):
            revoked = await interpreter.next_event("offer.revoked")
            assert revoked == {
                "type": "offer.revoked",
                "offer_id": offer["id"],
                "reason": "cancelled",
            }
            await interpreter.no_event("offer")
        status, body = await first.post(f"/api/offers/{offers[0]['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_revoked")
        assert await calls_and_usage(factory) == (0, 0)

    async def test_only_waiting_requests_of_that_user_end(self, desk, factory):
        """Deactivating a user without requests changes nothing; deactivating a counsellor
        ends their queued request but leaves their accepted call and others' requests."""
        admin = await an_admin(factory)
        arabic, ukrainian = await desk.interpreter(["ar"]), await desk.interpreter(["uk"])
        leaving, staying = await desk.counsellor(), await desk.counsellor()
        nobody = await desk.counsellor()
        accepted = await desk.ask(leaving, "ar")
        offer = (await arabic.next_event("offer"))["offer"]
        status, body = await arabic.post(f"/api/offers/{offer['id']}/accept")
        assert status == 200, body
        call_id = body["call"]["id"]
        queued = await desk.ask(leaving, "ar")
        assert queued["state"] == "queued"
        others = await desk.ask(staying, "uk")
        others_offer = (await ukrainian.next_event("offer"))["offer"]

        await deactivate(factory, admin, nobody.id)
        for request, state in ((queued, "queued"), (others, "offering"), (accepted, "accepted")):
            now = await request_as_admin_sees_it(factory, admin, request["id"])
            assert ended_by_deactivation(now) == (state, None)

        await deactivate(factory, admin, leaving.id)
        ended = await request_as_admin_sees_it(factory, admin, queued["id"])
        assert ended_by_deactivation(ended) == ("cancelled", "deactivated")
        still = await request_as_admin_sees_it(factory, admin, accepted["id"])
        assert ended_by_deactivation(still) == ("accepted", None)
        status, body = await arabic.get(f"/api/calls/{call_id}")
        assert (status, body["call"]["state"]) == (200, "connecting")
        await ukrainian.no_event("offer.revoked")
        status, body = await ukrainian.post(f"/api/offers/{others_offer['id']}/accept")
        assert status == 200, body


class TestRevokedTerminal:
    async def test_its_waiting_request_ends_and_the_offer_is_withdrawn(self, desk, factory):
        """A terminal revoked while its request is offered: the request ends `cancelled`
        with reason `deactivated` and the interpreter's offer is revoked."""
        admin = await an_admin(factory)
        interpreter: Person = await desk.interpreter(["uk"])
        terminal, cookie = await factory.terminal()
        device = await factory.new_client()
        device.session.cookie_jar.update_cookies({"tolk_session": cookie})
        made = await device.post(
            "/api/requests", json={"language": "uk"}, headers=factory.headers()
        )
        assert made.status == 201, await made.text()
        request = (await made.json())["request"]
        offer = (await interpreter.next_event("offer"))["offer"]
        assert offer["request_id"] == request["id"]

        resp = await factory.client.delete(f"/api/admin/terminals/{terminal.id}", headers=admin)
        assert resp.status == 204

        ended = await request_as_admin_sees_it(factory, admin, request["id"])
        assert ended_by_deactivation(ended) == ("cancelled", "deactivated")
        revoked = await interpreter.next_event("offer.revoked")
        assert (revoked["offer_id"], revoked["reason"]) == (offer["id"], "cancelled")
        status, body = await interpreter.post(f"/api/offers/{offer['id']}/accept")
        assert (status, body["error"]["code"]) == (409, "offer_revoked")
        await device.close()
