"""Sites: an admin adds, lists, renames, re-zones and deactivates them; names are once per
organisation; a user's site is an active site of their own organisation."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.errors import UnknownTimeZone
from accounts.models import Role
from accounts.sites import check_time_zone

NEW_USER = {"password": "a sound passphrase 2026", "display_name": "Neu", "role": "counsellor"}


class Admin:
    """An admin's API client for sites and users."""

    def __init__(self, client: Any, factory: Any) -> None:
        self.client = client
        self.factory = factory

    async def start(self) -> Admin:
        await self.factory.login(await self.factory.user(Role.ADMIN))
        return self

    async def send(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        resp = await self.client.request(method, path, json=body, headers=self.factory.headers())
        return resp.status, await resp.json()

    async def add_site(self, organization_id: str, name: str, **more: Any) -> dict[str, Any]:
        status, body = await self.send(
            "POST", "/api/admin/sites", {"organization_id": organization_id, "name": name, **more}
        )
        assert status == 201, body
        return body["site"]

    async def sites(self, organization_id: str) -> list[dict[str, Any]]:
        status, body = await self.send("GET", f"/api/admin/sites?organization_id={organization_id}")
        assert status == 200, body
        return body["sites"]


def refused(status: int, body: dict[str, Any], expected: int, code: str, *fields: str) -> bool:
    """Whether the answer is the refusal with that code naming exactly those fields."""
    error = body["error"]
    named = {f["field"] for f in error.get("fields", [])} or {error.get("field")}
    return status == expected and error["code"] == code and named == set(fields)


class TestSites:
    async def test_an_admin_adds_renames_rezones_and_deactivates_a_site(self, client, factory):
        """A new site is active and listed under its organisation only; changes show and are
        each recorded in the security event log."""
        admin = await Admin(client, factory).start()
        org = await factory.organization("MigraDo")
        other = await factory.organization("Jobcenter")
        await admin.add_site(other.id, "Hauptstelle")
        site = await admin.add_site(
            org.id, "  Infopoint ", address="Katharinenstraße 3, 44137 Dortmund"
        )
        assert site["name"] == "Infopoint"
        assert site["time_zone"] == "Europe/Berlin"
        assert site["active"] is True
        assert [s["name"] for s in await admin.sites(org.id)] == ["Infopoint"]

        path = f"/api/admin/sites/{site['id']}"
        status, body = await admin.send(
            "PATCH", path, {"name": "Infopoint Hbf", "time_zone": "Europe/Istanbul"}
        )
        assert status == 200, body
        assert (body["site"]["name"], body["site"]["time_zone"]) == (
            "Infopoint Hbf",
            "Europe/Istanbul",
        )
        status, body = await admin.send("PATCH", path, {"active": False})
        assert status == 200, body
        assert body["site"]["active"] is False
        listed = (await admin.sites(org.id))[0]
        assert (listed["name"], listed["active"], listed["address"]) == (
            "Infopoint Hbf",
            False,
            "Katharinenstraße 3, 44137 Dortmund",
        )

        status, audit = await admin.send("GET", f"/api/admin/audit?target={site['id']}")
        # One moment on the test's clock: the order among them is not the point.
        events = sorted(((e["action"], e["details"]) for e in audit["events"]), key=str)
        assert events == sorted(
            [
                ("site_created", {"organization_id": org.id, "time_zone": "Europe/Berlin"}),
                ("site_changed", {"name": "Infopoint Hbf", "time_zone": "Europe/Istanbul"}),
                ("site_changed", {"active": False}),
            ],
            key=str,
        )

    @pytest.mark.parametrize(
        "zone", ["Mars/Olympus_Mons", "europe/berlin", "Europe/../Europe/Berlin", "localtime"]
    )
    async def test_a_zone_outside_the_zone_database_is_refused(self, client, factory, zone):
        """Adding or re-zoning a site with no IANA zone is 422 naming `time_zone`; nothing
        is added or changed."""
        admin = await Admin(client, factory).start()
        org = await factory.organization()
        status, body = await admin.send(
            "POST", "/api/admin/sites", {"organization_id": org.id, "name": "A", "time_zone": zone}
        )
        assert refused(status, body, 422, "unknown_time_zone", "time_zone"), body
        assert await admin.sites(org.id) == []
        site = await admin.add_site(org.id, "B", time_zone="Europe/Vienna")
        status, body = await admin.send(
            "PATCH", f"/api/admin/sites/{site['id']}", {"time_zone": zone, "name": "C"}
        )
        assert refused(status, body, 422, "unknown_time_zone", "time_zone"), body
        assert [(s["name"], s["time_zone"]) for s in await admin.sites(org.id)] == [
            ("B", "Europe/Vienna")
        ]

    async def test_an_empty_name_is_refused(self, client, factory):
        """A name of spaces is 422 naming `name`, when adding and when renaming."""
        admin = await Admin(client, factory).start()
        org = await factory.organization()
        status, body = await admin.send(
            "POST", "/api/admin/sites", {"organization_id": org.id, "name": "   "}
        )
        assert refused(status, body, 422, "invalid_input", "name"), body
        site = await admin.add_site(org.id, "Zentrale")
        status, body = await admin.send("PATCH", f"/api/admin/sites/{site['id']}", {"name": ""})
        assert refused(status, body, 422, "invalid_input", "name"), body

    async def test_a_name_is_used_once_per_organisation(self, client, factory):
        """The same name (in any case) twice in one organisation is 409 `site_exists`, in
        another organisation it is fine; a rename onto a taken name is refused too."""
        admin = await Admin(client, factory).start()
        org = await factory.organization()
        other = await factory.organization()
        await admin.add_site(org.id, "Infopoint")
        status, body = await admin.send(
            "POST", "/api/admin/sites", {"organization_id": org.id, "name": "INFOPOINT "}
        )
        assert refused(status, body, 409, "site_exists", "name"), body
        await admin.add_site(org.id, "Ämter am Markt")
        status, body = await admin.send(
            "POST", "/api/admin/sites", {"organization_id": org.id, "name": "ämter am markt"}
        )
        assert refused(status, body, 409, "site_exists", "name"), body
        await admin.add_site(other.id, "Infopoint")
        centre = await admin.add_site(org.id, "Friedensplatz")
        status, body = await admin.send(
            "PATCH", f"/api/admin/sites/{centre['id']}", {"name": "infopoint"}
        )
        assert refused(status, body, 409, "site_exists", "name"), body
        status, body = await admin.send(
            "PATCH", f"/api/admin/sites/{centre['id']}", {"name": "friedensplatz"}
        )
        assert status == 200, body
        assert body["site"]["name"] == "friedensplatz"

    async def test_unknown_sites_and_organisations(self, client, factory):
        """Changing a site that does not exist is 404; a site for an organisation that does
        not exist is 422 `unknown_organization`."""
        admin = await Admin(client, factory).start()
        status, body = await admin.send("PATCH", "/api/admin/sites/nope", {"name": "X"})
        assert status == 404, body
        status, body = await admin.send(
            "POST", "/api/admin/sites", {"organization_id": "nope", "name": "X"}
        )
        assert refused(status, body, 422, "unknown_organization", "organization_id"), body


class TestUsersOnSites:
    async def test_a_users_site_is_an_active_site_of_their_organisation(self, client, factory):
        """A user is put on a site of their own organisation when added or changed; a site of
        another organisation or a deactivated one is 422 `unknown_site`; `null` takes them
        off. The user's site shows in the user list and in their own /api/me."""
        admin = await Admin(client, factory).start()
        org = await factory.organization()
        other = await factory.organization()
        centre = await admin.add_site(org.id, "Friedensplatz")
        infopoint = await admin.add_site(org.id, "Infopoint")
        elsewhere = await admin.add_site(other.id, "Elsewhere")
        closed = await admin.add_site(org.id, "Closed")
        await admin.send("PATCH", f"/api/admin/sites/{closed['id']}", {"active": False})

        new = {**NEW_USER, "username": "berater.a", "organization_id": org.id}
        for wrong in (elsewhere["id"], closed["id"], "nope"):
            status, body = await admin.send("POST", "/api/admin/users", {**new, "site_id": wrong})
            assert refused(status, body, 422, "unknown_site", "site_id"), body
        status, body = await admin.send(
            "POST", "/api/admin/users", {**new, "site_id": centre["id"]}
        )
        assert status == 201, body
        user = body["user"]
        assert user["site_id"] == centre["id"]

        path = f"/api/admin/users/{user['id']}"
        for wrong in (elsewhere["id"], closed["id"]):
            status, body = await admin.send("PATCH", path, {"site_id": wrong})
            assert refused(status, body, 422, "unknown_site", "site_id"), body
        status, body = await admin.send("PATCH", path, {"site_id": infopoint["id"]})
        assert status == 200, body
        assert body["user"]["site_id"] == infopoint["id"]
        status, body = await admin.send("PATCH", path, {"display_name": "Berater A"})
        assert body["user"]["site_id"] == infopoint["id"], "a change without site_id keeps it"

        own = await factory.new_client()
        resp = await own.post(
            "/api/session",
            json={"username": "berater.a", "password": NEW_USER["password"]},
            headers=factory.headers(),
        )
        assert (await resp.json())["user"]["site_id"] == infopoint["id"]
        status, body = await admin.send("PATCH", path, {"site_id": None})
        assert status == 200, body
        assert body["user"]["site_id"] is None
        me = await (await own.get("/api/me")).json()
        assert me["user"]["site_id"] is None
        await own.close()

        status, body = await admin.send("GET", "/api/admin/users?role=counsellor")
        assert [u["site_id"] for u in body["users"] if u["id"] == user["id"]] == [None]
        status, audit = await admin.send("GET", f"/api/admin/audit?target={user['id']}")
        sites = [e["details"]["site_id"] for e in audit["events"] if "site_id" in e["details"]]
        assert sorted(sites, key=str) == sorted([None, infopoint["id"], centre["id"]], key=str)


def test_time_zones_are_the_zone_databases_names():
    """The check takes IANA names as spelled there and refuses paths and machine names."""
    assert check_time_zone("America/Argentina/Buenos_Aires") == "America/Argentina/Buenos_Aires"
    for name in ("", "Berlin", "/usr/share/zoneinfo/UTC", "Europe/Berlin ", "localtime"):
        with pytest.raises(UnknownTimeZone):
            check_time_zone(name)
