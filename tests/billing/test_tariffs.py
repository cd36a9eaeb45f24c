"""Tariff administration through /api/admin/tariffs."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from accounts.models import Role
from tests.factories import Factory

BODY: dict[str, Any] = {
    "name": "Standard 2026",
    "unit_s": 60,
    "minimum_s": 300,
    "price_per_unit_cents": 135,
    "currency": "eur",
    "valid_from": "2026-01-01",
}


async def admin(factory: Factory) -> TestClient:
    return await factory.login(await factory.user(Role.ADMIN))


class TestTariffAdmin:
    async def test_create_list_and_update(self, client, factory):
        """An admin adds a tariff, sees it listed, and edits its price."""
        org = await factory.organization("Stadt Bochum")
        await admin(factory)
        body = BODY | {"organization_id": org.id, "languages": ["TI", "ckb", "ti", "prs"]}
        resp = await client.post("/api/admin/tariffs", json=body, headers=factory.headers())
        assert resp.status == 201, await resp.text()
        tariff = (await resp.json())["tariff"]
        assert tariff["currency"] == "EUR"
        assert tariff["languages"] == ["ckb", "fa-AF", "ti"]
        assert tariff["organization_id"] == org.id
        listed = await (await client.get("/api/admin/tariffs")).json()
        assert [t["id"] for t in listed["tariffs"]] == [tariff["id"]]
        resp = await client.patch(
            f"/api/admin/tariffs/{tariff['id']}",
            json={"price_per_unit_cents": 150, "languages": []},
            headers=factory.headers(),
        )
        assert resp.status == 200
        updated = (await resp.json())["tariff"]
        assert (updated["price_per_unit_cents"], updated["languages"]) == (150, [])
        assert updated["name"] == "Standard 2026"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"unit_s": 0}, "unit_s"),
            ({"minimum_s": -1}, "minimum_s"),
            ({"price_per_unit_cents": -5}, "price_per_unit_cents"),
            ({"currency": "EURO"}, "currency"),
            ({"currency": "E1R"}, "currency"),
            ({"languages": ["not a tag"]}, "languages.0"),
            ({"organization_id": "nope"}, "organization_id"),
            ({"valid_from": "soon"}, "valid_from"),
        ],
    )
    async def test_invalid_tariffs_are_422_naming_the_field(self, client, factory, change, field):
        """Bad units, prices, currencies, tags or organisations are refused by field."""
        await admin(factory)
        resp = await client.post(
            "/api/admin/tariffs", json=BODY | change, headers=factory.headers()
        )
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert [f["field"] for f in error["fields"]] == [field]

    async def test_unknown_tariff_is_404(self, client, factory):
        """Editing a tariff that does not exist is 404."""
        await admin(factory)
        resp = await client.patch(
            "/api/admin/tariffs/nope", json={"name": "x"}, headers=factory.headers()
        )
        assert resp.status == 404

    async def test_null_for_a_required_field_is_422(self, client, factory):
        """A PATCH cannot clear the price."""
        await admin(factory)
        created = await client.post("/api/admin/tariffs", json=BODY, headers=factory.headers())
        tariff_id = (await created.json())["tariff"]["id"]
        resp = await client.patch(
            f"/api/admin/tariffs/{tariff_id}",
            json={"price_per_unit_cents": None},
            headers=factory.headers(),
        )
        assert resp.status == 422

    @pytest.mark.parametrize("role", [Role.FINANCE, Role.COUNSELLOR, Role.INTERPRETER])
    async def test_only_admins_manage_tariffs(self, client, factory, role):
        """Everyone but an admin gets 403."""
        await factory.login(await factory.user(role))
        assert (await client.get("/api/admin/tariffs")).status == 403
        resp = await client.post("/api/admin/tariffs", json=BODY, headers=factory.headers())
        assert resp.status == 403

    async def test_openapi_documents_billing(self, client):
        """The OpenAPI document lists the usage and tariff endpoints."""
        paths = (await (await client.get("/api/openapi.json")).json())["paths"]
        assert {"/api/usage", "/api/usage/summary", "/api/admin/tariffs"} <= set(paths)
        names = {p["name"] for p in paths["/api/usage"]["get"]["parameters"]}
        assert {"from", "to", "organization", "format", "dialect"} <= names
