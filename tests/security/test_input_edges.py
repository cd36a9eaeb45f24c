"""Input at the edge of what it may be: a clear 422 (or 409) naming the field, never a 500."""

from __future__ import annotations

import asyncio

import pytest

from accounts.models import Role


class TestUsagePeriodBounds:
    @pytest.mark.parametrize("path", ["/api/usage", "/api/usage/summary"])
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("from", "0001-01-01"),
            ("to", "0001-01-01"),
            ("from", "9999-12-31T23:59:59-14:00"),
            ("to", "9999-12-31T23:59:59-14:00"),
            ("from", "0001-01-01T00:00:00+14:00"),
        ],
    )
    async def test_a_bound_beyond_the_calendar_is_422_naming_it(
        self, client, factory, path, name, value
    ):
        """A bound that in UTC falls outside years 1-9999 is 422 naming `from` or `to`."""
        await factory.login(await factory.user(Role.FINANCE))
        resp = await client.get(path, params={name: value})
        assert resp.status == 422, await resp.text()
        error = (await resp.json())["error"]
        assert error["fields"][0]["field"] == name

    async def test_the_widest_bounds_that_exist_still_answer(self, client, factory):
        """The first and last days that exist in UTC are fine bounds."""
        await factory.login(await factory.user(Role.FINANCE))
        resp = await client.get(
            "/api/usage/summary",
            params={"from": "0001-01-02", "to": "9999-12-31T00:00:00Z"},
        )
        assert resp.status == 200, await resp.text()


class TestOrganisationNames:
    async def test_a_name_with_spaces_around_an_existing_one_is_409_naming_it(
        self, client, factory
    ):
        """`"Dup1 "` after `"Dup1"` is the same name: 409 `organization_exists` on `name`."""
        await factory.login(await factory.user(Role.ADMIN))
        first = await client.post(
            "/api/admin/organizations", json={"name": "Dup1"}, headers=factory.headers()
        )
        assert first.status == 201
        for name in ("Dup1 ", " Dup1", "\tDup1\n"):
            resp = await client.post(
                "/api/admin/organizations", json={"name": name}, headers=factory.headers()
            )
            assert resp.status == 409, await resp.text()
            error = (await resp.json())["error"]
            assert (error["code"], error["field"]) == ("organization_exists", "name")

    async def test_a_name_of_spaces_only_is_422(self, client, factory):
        """A name that is empty once trimmed is refused naming `name`."""
        await factory.login(await factory.user(Role.ADMIN))
        resp = await client.post(
            "/api/admin/organizations", json={"name": "   "}, headers=factory.headers()
        )
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["field"] == "name"

    async def test_the_same_name_added_twice_at_once_gives_one_201_and_one_409(
        self, client, factory
    ):
        """Two admins adding one name at the same moment: one wins, the other hears 409."""
        await factory.login(await factory.user(Role.ADMIN))
        results = await asyncio.gather(
            *(
                client.post(
                    "/api/admin/organizations",
                    json={"name": f"Twin{' ' * i}"},
                    headers=factory.headers(),
                )
                for i in range(4)
            )
        )
        assert sorted(r.status for r in results) == [201, 409, 409, 409]


class TestNulCharacters:
    """PostgreSQL cannot store a NUL character: text holding one is 422 naming where it is,
    on SQLite too, instead of a 500 from the database."""

    async def test_bodies_queries_and_paths_with_a_nul_are_422_naming_the_field(
        self, client, factory
    ):
        """In a body field, a nested field, a query parameter or a path parameter."""
        await factory.login(await factory.user(Role.ADMIN))
        headers = factory.headers()
        cases = [
            (
                client.post("/api/admin/organizations", json={"name": "a\0b"}, headers=headers),
                "name",
            ),
            (
                client.post("/api/session", json={"username": "x\0", "password": "y"}),
                "username",
            ),
            (client.get("/api/usage", params={"organization": "o\0"}), "organization"),
            (client.get("/api/admin/users", params={"role": "\0"}), "role"),
            (client.get("/api/requests/a%00b"), "request_id"),
            (
                client.patch("/api/admin/users/u%00", json={"display_name": "x"}, headers=headers),
                "user_id",
            ),
        ]
        for call, field in cases:
            resp = await call
            assert resp.status == 422, (field, await resp.text())
            assert (await resp.json())["error"]["fields"][0]["field"] == field

    async def test_a_roster_file_with_a_nul_is_422(self, client, factory):
        """A CSV import holding a NUL is refused naming the body."""
        await factory.login(await factory.user(Role.ADMIN))
        resp = await client.post(
            "/api/admin/interpreters/import",
            data=b"username,display_name,email,languages\nx\0,X,,uk\n",
            headers=factory.headers(**{"Content-Type": "text/csv"}),
        )
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "invalid_rows"

    async def test_a_socket_message_with_a_nul_is_answered_invalid_message(self, factory):
        """`call.join` of an id holding a NUL: invalid_message naming call_id, socket open."""
        user = await factory.user(Role.COUNSELLOR)
        ws = await factory.socket(await factory.token(user))
        await ws.send_json({"type": "call.join", "call_id": "a\0b", "ref": "n"})
        reply = await ws.receive_json(timeout=5)
        assert (reply["code"], reply["fields"][0]["field"], reply["ref"]) == (
            "invalid_message",
            "call_id",
            "n",
        )
        await ws.send_json({"type": "ping", "ref": "p"})
        assert await ws.receive_json(timeout=5) == {"type": "pong", "ref": "p"}
        await ws.close()
