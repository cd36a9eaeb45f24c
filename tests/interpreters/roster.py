"""An admin's side of the interpreter roster: a bearer token and the CSV import."""

from __future__ import annotations

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlmodel import select

from accounts.models import Role, User
from infra.db import Database
from tests.factories import Factory


async def admin_headers(factory: Factory) -> dict[str, str]:
    """The Authorization header of a fresh admin's API token."""
    token = await factory.token(await factory.user(Role.ADMIN))
    return {"Authorization": f"Bearer {token}"}


async def import_roster(
    client: TestClient, headers: dict[str, str], roster: str | bytes
) -> ClientResponse:
    """POST a roster CSV to the import endpoint as the admin behind `headers`."""
    data = roster.encode() if isinstance(roster, str) else roster
    return await client.post(
        "/api/admin/interpreters/import",
        data=data,
        headers={**headers, "Content-Type": "text/csv"},
    )


async def imported_user(
    client: TestClient, headers: dict[str, str], db: Database, roster: str, username: str
) -> User:
    """Import `roster` (it must be accepted) and return the user it has as `username`."""
    resp = await import_roster(client, headers, roster)
    assert resp.status == 200, await resp.text()
    async with db.read() as session:
        return (await session.exec(select(User).where(User.username == username))).one()
