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
