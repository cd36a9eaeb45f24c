"""Finance sees its own organisation's usage, and what an admin grants it."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from accounts.models import Role
from billing.usage import record_usage

GROUPINGS = ("organization", "language", "interpreter", "month")


@pytest.fixture
async def centre(factory, db):
    """The city and the Jobcenter, each with a billed call by its own counsellor and an
    interpreter whose name appears in that call only; a finance user of each, an admin."""
    city = await factory.organization("Stadt Dortmund – Sozialamt", cost_center="50-SOZ")
    jobcenter = await factory.organization("Jobcenter Dortmund", cost_center="JC-DO")
    world = {"city": city, "jobcenter": jobcenter}
    start = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)
    for n, (key, org, language, name) in enumerate(
        (
            ("city", city, "ar", "Hanna Stadtdolmetscherin"),
            ("jobcenter", jobcenter, "uk", "Ivan Jobcenterdolmetscher"),
        )
    ):
        counsellor = await factory.user(Role.COUNSELLOR, organization=org)
        interpreter = await factory.interpreter(display_name=name)
        moment = start + timedelta(hours=n)
        call = await factory.call_between(
            counsellor, interpreter, language, moment, moment + timedelta(minutes=5)
        )
        async with db.write() as session:
            await record_usage(session, call)
        world[f"{key}_counsellor"] = counsellor
        world[f"{key}_interpreter_name"] = name
        world[f"{key}_call"] = call
    world["jobcenter_finance"] = await factory.user(Role.FINANCE, organization=jobcenter)
    world["admin"] = await factory.user(Role.ADMIN, organization=city)
    return world


async def bearer(factory, user) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factory.token(user)}"}


async def everything_seen(client, headers) -> bytes:
    """Every usage answer a finance page or script can get, as bytes."""
    seen = []
    for params in (
        {},
        {"format": "csv"},
        {"format": "csv", "dialect": "de"},
        *({"group_by": g} for g in GROUPINGS),
    ):
        path = "/api/usage/summary" if "group_by" in params else "/api/usage"
        resp = await client.get(path, params=params, headers=headers)
        assert resp.status == 200, await resp.text()
        seen.append(await resp.read())
    resp = await client.get("/api/usage", params={"format": "xlsx"}, headers=headers)
    book = load_workbook(io.BytesIO(await resp.read()), read_only=True)
    cells = [
        str(v)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for v in row
    ]
    seen.append("\n".join(cells).encode())
    return b"\n".join(seen)


async def grant(client, factory, admin, user_id, organization_id):
    return await client.post(
        "/api/admin/finance-grants",
        json={"user_id": user_id, "organization_id": organization_id},
        headers=await bearer(factory, admin),
    )


class TestOwnOrganisation:
    async def test_jobcenter_finance_sees_nothing_of_the_city(self, client, factory, centre):
        """Records, CSV, XLSX and every summary hold the Jobcenter's call only: no city
        name, counsellor id, call or interpreter name."""
        headers = await bearer(factory, centre["jobcenter_finance"])
        records = await (await client.get("/api/usage", headers=headers)).json()
        assert [r["call_id"] for r in records] == [centre["jobcenter_call"].id]
        seen = (await everything_seen(client, headers)).decode("utf-8", "replace")
        for secret in (
            centre["city"].id,
            centre["city"].name,
            centre["city_counsellor"].id,
            centre["city_call"].id,
            centre["city_interpreter_name"],
        ):
            assert secret not in seen
        assert centre["jobcenter_interpreter_name"] in seen

    async def test_asking_for_the_city_by_id_is_refused(self, client, factory, centre):
        """Naming another organisation in the filter is 403, for export and summary."""
        headers = await bearer(factory, centre["jobcenter_finance"])
        for path in ("/api/usage", "/api/usage/summary"):
            resp = await client.get(
                path, params={"organization": centre["city"].id}, headers=headers
            )
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "organization_not_granted"
        own = await client.get(
            "/api/usage", params={"organization": centre["jobcenter"].id}, headers=headers
        )
        assert len(await own.json()) == 1

    async def test_the_scope_names_the_own_organisation(self, client, factory, centre):
        """GET /api/usage/scope tells the finance page whose usage it shows."""
        headers = await bearer(factory, centre["jobcenter_finance"])
        scope = (await (await client.get("/api/usage/scope", headers=headers)).json())["scope"]
        assert scope == {
            "all": False,
            "organizations": [{"id": centre["jobcenter"].id, "name": "Jobcenter Dortmund"}],
        }

    async def test_admins_see_every_organisation(self, client, factory, centre):
        """An admin needs no grant."""
        headers = await bearer(factory, centre["admin"])
        assert len(await (await client.get("/api/usage", headers=headers)).json()) == 2
        scope = (await (await client.get("/api/usage/scope", headers=headers)).json())["scope"]
        assert scope["all"] is True


class TestGrants:
    async def test_a_granted_organisation_is_seen_until_the_grant_is_withdrawn(
        self, client, factory, centre
    ):
        """An admin grants the city: its call, counsellor and interpreter appear; removing
        the grant hides them again."""
        finance = centre["jobcenter_finance"]
        headers = await bearer(factory, finance)
        resp = await grant(client, factory, centre["admin"], finance.id, centre["city"].id)
        assert resp.status == 201, await resp.text()
        made = (await resp.json())["grant"]
        assert made["organization"] == centre["city"].name
        records = await (await client.get("/api/usage", headers=headers)).json()
        assert {r["call_id"] for r in records} == {
            centre["city_call"].id,
            centre["jobcenter_call"].id,
        }
        seen = (await everything_seen(client, headers)).decode("utf-8", "replace")
        assert centre["city_interpreter_name"] in seen
        assert centre["city_counsellor"].id in seen
        city_only = await client.get(
            "/api/usage/summary",
            params={"organization": centre["city"].id, "group_by": "interpreter"},
            headers=headers,
        )
        assert [g["name"] for g in await city_only.json()] == [centre["city_interpreter_name"]]

        admin = await bearer(factory, centre["admin"])
        listed = await client.get(
            "/api/admin/finance-grants", params={"user_id": finance.id}, headers=admin
        )
        assert [g["id"] for g in (await listed.json())["grants"]] == [made["id"]]
        gone = await client.delete(f"/api/admin/finance-grants/{made['id']}", headers=admin)
        assert gone.status == 204
        records = await (await client.get("/api/usage", headers=headers)).json()
        assert [r["call_id"] for r in records] == [centre["jobcenter_call"].id]
        again = await client.delete(f"/api/admin/finance-grants/{made['id']}", headers=admin)
        assert again.status == 404
        # Both changes are in the security log, naming the admin and the finance user.
        for action in ("finance_granted", "finance_grant_revoked"):
            page = await client.get(
                "/api/admin/audit", params={"action": action, "target": finance.id}, headers=admin
            )
            (event,) = (await page.json())["events"]
            assert event["actor"]["id"] == centre["admin"].id
            assert event["details"]["organization_id"] == centre["city"].id

    async def test_a_grant_of_every_organisation(self, client, factory, centre):
        """`organization_id: null` is the centre's finance office: it sees all."""
        finance = centre["jobcenter_finance"]
        resp = await grant(client, factory, centre["admin"], finance.id, None)
        assert resp.status == 201
        assert (await resp.json())["grant"]["organization"] is None
        headers = await bearer(factory, finance)
        assert len(await (await client.get("/api/usage", headers=headers)).json()) == 2
        scope = (await (await client.get("/api/usage/scope", headers=headers)).json())["scope"]
        assert scope == {"all": True, "organizations": []}

    async def test_granting_twice_changes_nothing(self, client, factory, centre):
        """The same grant again answers 200 with the grant that exists."""
        finance = centre["jobcenter_finance"]
        for org_id in (centre["city"].id, None):
            first = await grant(client, factory, centre["admin"], finance.id, org_id)
            second = await grant(client, factory, centre["admin"], finance.id, org_id)
            assert (first.status, second.status) == (201, 200)
            assert (await first.json())["grant"]["id"] == (await second.json())["grant"]["id"]

    async def test_the_same_grant_made_at_once_is_made_once(self, client, factory, centre):
        """Five admins' clicks at the same moment: one grant, one 201, the rest 200."""
        finance = centre["jobcenter_finance"]
        for org_id in (centre["city"].id, None):
            answers = await asyncio.gather(
                *(grant(client, factory, centre["admin"], finance.id, org_id) for _ in range(5))
            )
            assert sorted(a.status for a in answers) == [200, 200, 200, 200, 201]
            assert len({(await a.json())["grant"]["id"] for a in answers}) == 1

    @pytest.mark.parametrize(
        ("who", "org", "code", "field"),
        [
            ("city_counsellor", "city", "not_a_finance_user", "user_id"),
            ("nobody", "city", "not_a_finance_user", "user_id"),
            ("jobcenter_finance", "nowhere", "unknown_organization", "organization_id"),
        ],
    )
    async def test_grants_are_for_finance_users_and_real_organisations(
        self, client, factory, centre, who, org, code, field
    ):
        """Granting a counsellor, an unknown user or an unknown organisation is 422."""
        user_id = centre[who].id if who in centre else "nobody"
        org_id = centre[org].id if org in centre else "nowhere"
        resp = await grant(client, factory, centre["admin"], user_id, org_id)
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert (error["code"], [f["field"] for f in error["fields"]]) == (code, [field])

    async def test_only_admins_grant(self, client, factory, centre):
        """A finance user cannot grant themselves more."""
        finance = centre["jobcenter_finance"]
        resp = await client.post(
            "/api/admin/finance-grants",
            json={"user_id": finance.id, "organization_id": None},
            headers=await bearer(factory, finance),
        )
        assert resp.status == 403
