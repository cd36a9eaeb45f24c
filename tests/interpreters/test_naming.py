"""Interpreter numbers and the centre's choice of showing counsellors the name or the number."""

from __future__ import annotations

import asyncio

from accounts.models import Role, User
from interpreters import service as roster
from tests.waiting import next_message


async def admin_list(client, factory) -> dict[str, dict]:
    await factory.login(await factory.user(Role.ADMIN))
    resp = await client.get("/api/admin/interpreters")
    assert resp.status == 200
    return {row["id"]: row for row in (await resp.json())["interpreters"]}


async def shown_as(client, factory, value: str):
    return await client.put(
        "/api/admin/settings", json={"interpreter_shown_as": value}, headers=factory.headers()
    )


async def counsellor_of(factory, call) -> User:
    async with factory.db.read() as session:
        user = await session.get(User, call.counsellor_id)
    assert user is not None
    return user


class TestNumbers:
    async def test_each_new_profile_gets_the_next_number_and_keeps_it(self, client, factory):
        """Numbers are given 1, 2, 3 as profiles are made, shown in the admin's roster, and
        stay what they are when a profile is changed."""
        olena = await factory.interpreter(("uk",), display_name="Olena")
        omar = await factory.interpreter(("ar",), display_name="Omar")
        listed = await admin_list(client, factory)
        assert (listed[olena.id]["number"], listed[omar.id]["number"]) == (1, 2)
        resp = await client.put(
            f"/api/admin/interpreters/{olena.id}",
            json={"languages": ["uk", "ru"], "agency": "Pool"},
            headers=factory.headers(),
        )
        assert resp.status == 200
        assert (await resp.json())["interpreter"]["number"] == 1
        farid = await factory.interpreter(("fa-AF",))
        assert (await admin_list(client, factory))[farid.id]["number"] == 3

    async def test_profiles_made_at_once_get_different_numbers(self, client, factory):
        """Several profiles made in concurrent transactions never share a number."""
        users = [await factory.user(Role.INTERPRETER) for _ in range(4)]

        async def make(user: User) -> None:
            async with factory.db.write() as session:
                await roster.upsert_profile(
                    session, user.id, roster.ProfileData(languages=("uk",)), factory.clock.now()
                )

        await asyncio.gather(*(make(u) for u in users))
        listed = await admin_list(client, factory)
        assert sorted(listed[u.id]["number"] for u in users) == [1, 2, 3, 4]


class TestShownAs:
    async def test_counsellors_see_the_number_when_the_admin_says_so(self, client, factory):
        """By default the call names the interpreter; once the admin chooses numbers, the
        counsellor's call carries the number and no name (agency and language stay)."""
        interpreter = await factory.interpreter(display_name="Olena K.", agency="Pool Nord")
        number = (await admin_list(client, factory))[interpreter.id]["number"]
        resp = await client.get("/api/admin/settings")
        assert (await resp.json())["settings"]["interpreter_shown_as"] == "name"
        call = await factory.call(interpreter=interpreter)
        await factory.login(await counsellor_of(factory, call))
        party = (await (await client.get(f"/api/calls/{call.id}")).json())["call"]["interpreter"]
        assert (party["display_name"], party["number"]) == ("Olena K.", None)

        await factory.login(await factory.user(Role.ADMIN))
        resp = await shown_as(client, factory, "number")
        assert resp.status == 200
        assert (await resp.json())["settings"]["interpreter_shown_as"] == "number"
        assert (await (await client.get("/api/admin/settings")).json())["settings"][
            "interpreter_shown_as"
        ] == "number"
        await factory.login(await counsellor_of(factory, call))
        view = (await (await client.get(f"/api/calls/{call.id}")).json())["call"]
        assert view["interpreter"] == {
            "id": interpreter.id,
            "display_name": None,
            "agency": "Pool Nord",
            "number": number,
        }
        assert view["language"] == "uk"

    async def test_the_socket_tells_the_number_too(self, client, factory):
        """A call's news on the counsellor's socket follows the setting as the reply does."""
        await factory.login(await factory.user(Role.ADMIN))
        assert (await shown_as(client, factory, "number")).status == 200
        interpreter = await factory.interpreter(display_name="Layla H.")
        call = await factory.call(interpreter=interpreter)
        counsellor = await counsellor_of(factory, call)
        ws = await factory.socket(await factory.token(counsellor))
        await factory.login(counsellor)
        resp = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
        assert resp.status == 200
        news = await next_message(ws, "call.updated")
        assert news["call"]["interpreter"]["display_name"] is None
        assert news["call"]["interpreter"]["number"] == 1
        assert "Layla" not in str(news)

    async def test_only_admins_change_it_and_only_to_name_or_number(self, client, factory):
        """Counsellors and interpreters are refused; an unknown choice is 422; a change is
        in the security log."""
        for role in (Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE):
            await factory.login(await factory.user(role))
            assert (await client.get("/api/admin/settings")).status == 403
            assert (await shown_as(client, factory, "number")).status == 403
        admin = await factory.user(Role.ADMIN)
        await factory.login(admin)
        resp = await shown_as(client, factory, "initials")
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["field"] == "interpreter_shown_as"
        assert (await shown_as(client, factory, "number")).status == 200
        resp = await client.get("/api/admin/audit", params={"action": "settings_changed"})
        events = (await resp.json())["events"]
        assert [e["details"] for e in events] == [{"interpreter_shown_as": "number"}]
        assert events[0]["actor"]["id"] == admin.id
