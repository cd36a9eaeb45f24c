"""Interpreter pools and in-house profiles as an admin manages them, and what a colleague
with an in-house profile may then do."""

from __future__ import annotations

from accounts.models import Role
from tests.interpreters.roster import admin_headers


async def test_the_migration_made_an_in_house_and_an_external_pool(client, factory):
    """Every interpreter is in the external pool; the in-house pool comes first."""
    await factory.interpreter(("uk",))
    resp = await client.get("/api/admin/pools", headers=await admin_headers(factory))
    assert resp.status == 200
    pools = (await resp.json())["pools"]
    assert [(p["id"], p["tier"], p["escalation_s"], p["members"]) for p in pools] == [
        ("in_house", "in_house", 20, 0),
        ("external", "external", 20, 1),
    ]


async def test_admin_adds_and_changes_pools(client, factory):
    """A new pool, a name already taken (409), a changed escalation time, an unknown pool."""
    headers = await admin_headers(factory)
    resp = await client.post(
        "/api/admin/pools", json={"name": " Nachtdienst ", "tier": "external"}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    pool = (await resp.json())["pool"]
    assert (pool["name"], pool["tier"], pool["escalation_s"]) == ("Nachtdienst", "external", 20)
    again = await client.post(
        "/api/admin/pools", json={"name": "Nachtdienst", "tier": "in_house"}, headers=headers
    )
    assert (again.status, (await again.json())["error"]["code"]) == (409, "pool_exists")
    resp = await client.patch(
        "/api/admin/pools/in_house", json={"escalation_s": 45}, headers=headers
    )
    assert (await resp.json())["pool"]["escalation_s"] == 45
    resp = await client.patch("/api/admin/pools/nowhere", json={"escalation_s": 5}, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "unknown_pool")


async def test_a_counsellor_given_an_in_house_profile_may_interpret(client, factory):
    """The admin gives a counsellor their languages; they may now act as an interpreter
    (their own page links to it), until the admin takes the profile away."""
    headers = await admin_headers(factory)
    counsellor = await factory.user(Role.COUNSELLOR)
    own = {"Authorization": f"Bearer {await factory.token(counsellor)}"}
    assert (await (await client.get("/api/me", headers=own)).json())["interprets"] is False
    resp = await client.put(
        f"/api/admin/interpreters/{counsellor.id}", json={"languages": ["ar"]}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    profile = (await resp.json())["interpreter"]
    assert (profile["role"], profile["pool_id"]) == ("counsellor", "in_house")
    assert (await (await client.get("/api/me", headers=own)).json())["interprets"] is True
    resp = await client.put(
        "/api/interpreters/me/status", json={"status": "available"}, headers=own
    )
    assert resp.status == 200, await resp.text()
    resp = await client.patch(
        f"/api/admin/interpreters/{counsellor.id}", json={"active": False}, headers=headers
    )
    assert resp.status == 200
    assert (await client.get("/api/interpreters/me", headers=own)).status == 403
    assert (await (await client.get("/api/me", headers=own)).json())["interprets"] is False


async def test_the_interpreter_page_opens_for_a_colleague_with_a_profile(client, factory):
    """/interpreter is the interpreter's page and a colleague's with an in-house profile;
    another counsellor is sent to their own page."""
    headers = await admin_headers(factory)
    colleague = await factory.user(Role.COUNSELLOR)
    await client.put(
        f"/api/admin/interpreters/{colleague.id}", json={"languages": ["ar"]}, headers=headers
    )
    browser = await factory.login(colleague)
    resp = await browser.get("/interpreter", allow_redirects=False)
    assert resp.status == 200
    other = await factory.login(await factory.user(Role.COUNSELLOR))
    resp = await other.get("/interpreter", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (302, "/counsellor")
