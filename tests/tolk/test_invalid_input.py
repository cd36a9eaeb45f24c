"""Every 422 of the HTTP API names its bad fields: `{"error": {"code", "message", "fields":
[{field, problem}]}}`, with one of the codes docs/http-api.md lists."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Role

HTTP_API = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
BAD_ROSTER = (
    "username,display_name,email,languages,gender,specializations\n"
    "nadia,Nadia Haddad,nadia@example.org,ar,female,,\n"
    "kemal,Kemal Y,,!!,robot,,\n"
)
NEW_USER = {
    "username": "neu.berater",
    "password": "a sound passphrase 2026",
    "display_name": "Neu",
    "role": "counsellor",
}
TARIFF = {"name": "Stadt", "unit_s": 60, "price_per_unit_cents": 150, "valid_from": "2026-01-01"}


@dataclass(frozen=True)
class Case:
    """One way to get a 422: who asks, what, and the code and fields the answer names."""

    role: Role | None
    method: str
    path: str
    code: str
    fields: tuple[str, ...]
    json: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    login: bool = False
    """Ask with a login session instead of a bearer token (some operations want one)."""


C, INT, F, A = Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE, Role.ADMIN
CASES = {
    # Requests
    "request: malformed language": Case(
        C, "POST", "/api/requests", "invalid_language", ("language",), {"language": "!!"}
    ),
    "request: a tag of no language": Case(
        C, "POST", "/api/requests", "unknown_language", ("language",), {"language": "zz"}
    ),
    "request: a language nobody speaks": Case(
        C, "POST", "/api/requests", "unknown_language", ("language",), {"language": "ti"}
    ),
    "request: no language": Case(C, "POST", "/api/requests", "invalid_input", ("language",), {}),
    "request: a field that does not exist": Case(
        C, "POST", "/api/requests", "invalid_input", ("colour",), {"language": "ar", "colour": 1}
    ),
    "request: unknown specialisation": Case(
        C,
        "POST",
        "/api/requests",
        "unknown_specialization",
        ("preferences.specialization",),
        {"language": "ar", "preferences": {"specialization": "astrology"}},
    ),
    "request: body not JSON": Case(
        C, "POST", "/api/requests", "invalid_input", ("body",), data=b"{language"
    ),
    # Bookings
    "booking: a local time the spring change skips": Case(
        C,
        "POST",
        "/api/bookings",
        "invalid_input",
        ("local_start",),
        {"language": "ar", "local_start": "2027-03-28T02:30", "duration_min": 60},
    ),
    "booking: a start in the past": Case(
        C,
        "POST",
        "/api/bookings",
        "invalid_input",
        ("local_start",),
        {"language": "ar", "local_start": "2026-01-01T10:00", "duration_min": 60},
    ),
    "booking: too short and no language": Case(
        C,
        "POST",
        "/api/bookings",
        "invalid_input",
        ("language", "duration_min"),
        {"local_start": "2027-01-04T10:00", "duration_min": 1},
    ),
    # The roster
    "status: not a status": Case(
        INT,
        "PUT",
        "/api/interpreters/me/status",
        "invalid_input",
        ("status",),
        {"status": "asleep"},
    ),
    "languages: unknown locale": Case(
        C, "GET", "/api/languages?locale=fr", "invalid_input", ("locale",)
    ),
    "profile: a colleague in an external pool": Case(
        A,
        "PUT",
        "/api/admin/interpreters/{counsellor}",
        "pool_not_in_house",
        ("pool_id",),
        {"languages": ["ar"], "pool_id": "external"},
    ),
    "profile: unknown pool": Case(
        A,
        "PUT",
        "/api/admin/interpreters/{interpreter}",
        "unknown_pool",
        ("pool_id",),
        {"languages": ["ar"], "pool_id": "nowhere"},
    ),
    "pool: escalation time out of range": Case(
        A,
        "POST",
        "/api/admin/pools",
        "invalid_input",
        ("escalation_s",),
        {"name": "Nachtdienst", "tier": "in_house", "escalation_s": 601},
    ),
    "pool: not a tier": Case(
        A, "POST", "/api/admin/pools", "invalid_input", ("tier",), {"name": "X", "tier": "vip"}
    ),
    "profile: malformed language": Case(
        A,
        "PUT",
        "/api/admin/interpreters/{interpreter}",
        "invalid_language",
        ("languages.1",),
        {"languages": ["ar", "!!"]},
    ),
    "profile: a tag of no language": Case(
        A,
        "PUT",
        "/api/admin/interpreters/{interpreter}",
        "invalid_language",
        ("languages.0",),
        {"languages": ["zz"]},
    ),
    "profile: unknown specialisation": Case(
        A,
        "PUT",
        "/api/admin/interpreters/{interpreter}",
        "unknown_specialization",
        ("specializations",),
        {"languages": ["ar"], "specializations": ["astrology"]},
    ),
    "interpreter list: malformed language": Case(
        A, "GET", "/api/admin/interpreters?language=!!", "invalid_language", ("language",)
    ),
    "specialisation: bad name": Case(
        A, "POST", "/api/admin/specializations", "invalid_input", ("name",), {"name": "a b"}
    ),
    "import: bad rows": Case(
        A,
        "POST",
        "/api/admin/interpreters/import",
        "invalid_rows",
        ("languages", "gender"),
        data=BAD_ROSTER.encode(),
        headers={"Content-Type": "text/csv"},
    ),
    "import: missing columns": Case(
        A,
        "POST",
        "/api/admin/interpreters/import",
        "invalid_rows",
        ("display_name", "email", "languages", "gender", "specializations"),
        data=b"username\nnadia\n",
        headers={"Content-Type": "text/csv"},
    ),
    "import: empty file": Case(
        A,
        "POST",
        "/api/admin/interpreters/import",
        "invalid_rows",
        ("body",),
        data=b"",
        headers={"Content-Type": "text/csv"},
    ),
    "import: not UTF-8": Case(
        A,
        "POST",
        "/api/admin/interpreters/import",
        "invalid_rows",
        ("body",),
        data=b"username\n\xff\xfe\n",
        headers={"Content-Type": "text/csv"},
    ),
    # Accounts
    "user: weak password": Case(
        A,
        "POST",
        "/api/admin/users",
        "weak_password",
        ("password",),
        {**NEW_USER, "password": "kurz", "organization_id": "{organization}"},
    ),
    "user: unknown organisation": Case(
        A,
        "POST",
        "/api/admin/users",
        "unknown_organization",
        ("organization_id",),
        {**NEW_USER, "organization_id": "nope"},
    ),
    "user: bad role": Case(
        A,
        "POST",
        "/api/admin/users",
        "invalid_input",
        ("role",),
        {**NEW_USER, "role": "boss", "organization_id": "{organization}"},
    ),
    "user: weak new password": Case(
        A,
        "PATCH",
        "/api/admin/users/{counsellor}",
        "weak_password",
        ("password",),
        {"password": "kurz"},
    ),
    "user: no password": Case(
        A,
        "POST",
        "/api/admin/users",
        "invalid_input",
        ("password",),
        {k: v for k, v in NEW_USER.items() if k != "password"}
        | {"organization_id": "{organization}"},
    ),
    "user: machine account with a password": Case(
        A,
        "POST",
        "/api/admin/users",
        "weak_password",
        ("password",),
        {**NEW_USER, "machine": True, "organization_id": "{organization}"},
    ),
    "token: unknown scope": Case(
        A,
        "POST",
        "/api/admin/tokens",
        "invalid_scope",
        ("scopes",),
        {"user_id": "{admin}", "name": "Export", "scopes": ["nonsense"]},
        login=True,
    ),
    "audit: unknown action": Case(
        A, "GET", "/api/admin/audit?action=bogus", "invalid_input", ("action",)
    ),
    "audit: time without offset": Case(
        A, "GET", "/api/admin/audit?from=2026-01-01T00:00:00", "invalid_input", ("from",)
    ),
    "organisation: no name": Case(
        A, "POST", "/api/admin/organizations", "invalid_input", ("name",), {"name": ""}
    ),
    "site: no IANA time zone": Case(
        A,
        "POST",
        "/api/admin/sites",
        "unknown_time_zone",
        ("time_zone",),
        {"organization_id": "{organization}", "name": "Infopoint", "time_zone": "Dortmund"},
    ),
    "site: empty name": Case(
        A,
        "POST",
        "/api/admin/sites",
        "invalid_input",
        ("name",),
        {"organization_id": "{organization}", "name": " "},
    ),
    "site: re-zoned to no time zone": Case(
        A,
        "PATCH",
        "/api/admin/sites/{site}",
        "unknown_time_zone",
        ("time_zone",),
        {"time_zone": "x"},
    ),
    "user: a site of another organisation": Case(
        A,
        "PATCH",
        "/api/admin/users/{counsellor}",
        "unknown_site",
        ("site_id",),
        {"site_id": "{other_site}"},
    ),
    "token: no name": Case(
        A, "POST", "/api/admin/tokens", "invalid_input", ("name",), {"user_id": "{counsellor}"}
    ),
    "login: no password": Case(
        None, "POST", "/api/session", "invalid_input", ("password",), {"username": "x"}
    ),
    # Billing
    "tariff: malformed language": Case(
        A,
        "POST",
        "/api/admin/tariffs",
        "invalid_language",
        ("languages.0",),
        {**TARIFF, "languages": ["!!"]},
    ),
    "tariff: unknown organisation": Case(
        A,
        "POST",
        "/api/admin/tariffs",
        "unknown_organization",
        ("organization_id",),
        {**TARIFF, "organization_id": "nope"},
    ),
    "tariff: negative price": Case(
        A,
        "POST",
        "/api/admin/tariffs",
        "invalid_input",
        ("price_per_unit_cents",),
        {**TARIFF, "price_per_unit_cents": -1},
    ),
    "tariff: name set to null": Case(
        A, "PATCH", "/api/admin/tariffs/{tariff}", "invalid_input", ("name",), {"name": None}
    ),
    "finance grant: not a finance user": Case(
        A,
        "POST",
        "/api/admin/finance-grants",
        "not_a_finance_user",
        ("user_id",),
        {"user_id": "{counsellor}", "organization_id": None},
    ),
    "finance grant: unknown organisation": Case(
        A,
        "POST",
        "/api/admin/finance-grants",
        "unknown_organization",
        ("organization_id",),
        {"user_id": "{finance}", "organization_id": "nope"},
    ),
    "finance grant: organisation left out": Case(
        A,
        "POST",
        "/api/admin/finance-grants",
        "invalid_input",
        ("organization_id",),
        {"user_id": "{finance}"},
    ),
    "usage: from is no date": Case(F, "GET", "/api/usage?from=gestern", "invalid_input", ("from",)),
    "usage: timestamp without offset": Case(
        F, "GET", "/api/usage?from=2026-01-01T08:00:00", "invalid_input", ("from",)
    ),
    "usage: to before from": Case(
        F, "GET", "/api/usage?from=2026-02-01&to=2026-01-01", "invalid_input", ("to",)
    ),
    "usage: malformed language": Case(
        F, "GET", "/api/usage?language=!!", "invalid_language", ("language",)
    ),
    "usage: unknown format": Case(F, "GET", "/api/usage?format=pdf", "invalid_input", ("format",)),
    "summary: unknown grouping": Case(
        F, "GET", "/api/usage/summary?group_by=colour", "invalid_input", ("group_by",)
    ),
    # The pre-call check
    "precall: no SDP": Case(C, "POST", "/api/precall", "invalid_input", ("sdp",), {}),
    "precall: not an offer": Case(
        C, "POST", "/api/precall", "invalid_input", ("sdp",), {"sdp": "v=0\r\nnot an offer at all"}
    ),
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    """The case's body or path with the ids of this test's world put in."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def readme_error_codes() -> set[str]:
    """The codes listed in the table of 422 answers in docs/http-api.md."""
    text = HTTP_API.read_text()
    table = text[text.index("| 422 code |") :].split("\n\n", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))


@pytest.mark.parametrize("name", CASES)
async def test_every_422_names_its_fields(client, factory, name):
    """The answer is 422 with a documented code and `fields` naming exactly the bad fields."""
    case = CASES[name]
    organization = await factory.organization()
    counsellor = await factory.user(Role.COUNSELLOR, organization=organization)
    interpreter = await factory.interpreter(("ar",))
    ids = {"organization": organization.id, "counsellor": counsellor.id}
    ids["interpreter"] = interpreter.id
    ids["finance"] = (await factory.user(Role.FINANCE, organization=organization)).id
    admin = await factory.user(Role.ADMIN, organization=organization)
    ids["admin"] = admin.id
    ids["site"] = (await factory.site(organization)).id
    ids["other_site"] = (await factory.site(await factory.organization())).id
    headers = {**case.headers, **factory.headers()}
    if case.role is not None:
        known = {Role.COUNSELLOR: counsellor, Role.INTERPRETER: interpreter, Role.ADMIN: admin}
        asker = known.get(case.role) or await factory.user(case.role)
        if case.login:
            await factory.login(asker)
        else:
            headers["Authorization"] = f"Bearer {await factory.token(asker)}"
        if case.role is Role.ADMIN and "{tariff}" in case.path:
            made = await client.post("/api/admin/tariffs", json=TARIFF, headers=headers)
            assert made.status == 201, await made.text()
            ids["tariff"] = (await made.json())["tariff"]["id"]
    kwargs: dict[str, Any] = {"headers": headers}
    if case.data is not None:
        kwargs["data"] = case.data
        kwargs["headers"].setdefault("Content-Type", "application/json")
    elif case.json is not None:
        kwargs["json"] = _fill(case.json, ids)
    resp = await client.request(case.method, _fill(case.path, ids), **kwargs)
    body = await resp.json()
    assert resp.status == 422, body
    error = body["error"]
    assert error["code"] == case.code
    assert error["code"] in readme_error_codes()
    assert error["message"]
    assert "field" not in error
    named = [f["field"] for f in error["fields"]]
    assert set(named) == set(case.fields), error
    assert all(isinstance(f["problem"], str) and f["problem"] for f in error["fields"])
    # Only keys docs/http-api.md documents: `rows` belongs to the CSV import.
    documented = {"code", "message", "fields"} | (
        {"rows"} if case.code == "invalid_rows" else set()
    )
    assert set(error) <= documented


async def test_the_contract_promises_fields_on_every_422(client):
    """In /api/openapi.json every 422 answer is the error whose `fields` are required."""
    document = await (await client.get("/api/openapi.json")).json()
    schema = document["components"]["schemas"]["InvalidInput"]
    assert "fields" in schema["properties"]["error"]["required"]
    answers = [
        operation["responses"]["422"]
        for methods in document["paths"].values()
        for operation in methods.values()
        if "422" in operation["responses"]
    ]
    assert len(answers) > 20
    for answer in answers:
        ref = answer["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/InvalidInput"
