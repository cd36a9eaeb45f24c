"""The monthly statement of one organisation: lines per language and tariff, totals."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.billing.test_export import finance, seed


class TestStatement:
    async def test_lines_per_language_and_tariff_with_totals(self, client, factory, db):
        """January in Berlin for Köln: both calls (one at 00:10 on New Year's Day in
        Berlin), each its own line, and the totals with the cost centre."""
        koeln, *_ = await seed(factory, db)
        await finance(factory)
        resp = await client.get(
            "/api/usage/statement", params={"organization": koeln.id, "month": "2026-01"}
        )
        assert resp.status == 200, await resp.text()
        found = (await resp.json())["statement"]
        assert found["organization"] == {
            "id": koeln.id,
            "name": "Jobcenter Köln",
            "cost_center": "KST-4711",
        }
        assert (found["first_day"], found["last_day"]) == ("2026-01-01", "2026-01-31")
        assert [
            (x["language"], x["tariff"], x["calls"], x["amount_cents"]) for x in found["lines"]
        ] == [
            ("ar-SY", "Köln „Sonder“", 1, 1999),
            ("uk", "Köln „Sonder“", 1, 1999),
        ]
        assert found["totals"] == [
            {"currency": "EUR", "calls": 2, "billable_s": 1800, "amount_cents": 3998}
        ]
        assert found["untariffed_calls"] == 0

    async def test_an_organisation_outside_the_scope_is_403(self, client, factory, db):
        """The Jobcenter's finance cannot read another organisation's statement."""
        koeln, essen, *_ = await seed(factory, db)
        own = await factory.user(Role.FINANCE, organization=essen)
        await factory.login(own)
        resp = await client.get(
            "/api/usage/statement", params={"organization": koeln.id, "month": "2026-01"}
        )
        assert resp.status == 403
        resp = await client.get(
            "/api/usage/statement", params={"organization": essen.id, "month": "2026-01"}
        )
        assert resp.status == 200

    @pytest.mark.parametrize("month", ["2026-13", "2026-1", "January"])
    async def test_a_bad_month_is_422(self, client, factory, db, month):
        """A month that is not YYYY-MM names the field."""
        koeln, *_ = await seed(factory, db)
        await finance(factory)
        resp = await client.get(
            "/api/usage/statement", params={"organization": koeln.id, "month": month}
        )
        assert resp.status == 422
        assert "month" in await resp.text()
