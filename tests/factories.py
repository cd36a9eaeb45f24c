"""Builders of test data and of logged-in clients, through Tolk's own services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from accounts import service
from accounts.models import Organization, Role, User
from accounts.passwords import hash_password_sync
from infra.clock import ManualClock
from infra.db import Database

PASSWORD = "correct horse battery"
_HASH = hash_password_sync(PASSWORD)
_counter = itertools.count(1)


@dataclass
class Factory:
    """Makes organisations, users and logged-in sessions for one test's app."""

    client: TestClient
    db: Database
    clock: ManualClock

    @property
    def origin(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    def headers(self, **extra: str) -> dict[str, str]:
        """Headers a page of our own origin would send."""
        return {"Origin": self.origin, **extra}

    async def organization(
        self, name: str | None = None, cost_center: str = "CC-1"
    ) -> Organization:
        async with self.db.write() as session:
            return await service.create_organization(
                session, name or f"Org {next(_counter)}", cost_center, self.clock.now()
            )

    async def user(
        self,
        role: Role = Role.COUNSELLOR,
        username: str | None = None,
        organization: Organization | None = None,
        display_name: str | None = None,
    ) -> User:
        org = organization or await self.organization()
        username = username or f"{role.value}{next(_counter)}"
        async with self.db.write() as session:
            return await service.create_user(
                session,
                username=username,
                password_hash=_HASH,
                display_name=display_name or username.title(),
                role=role,
                organization_id=org.id,
                now=self.clock.now(),
            )

    async def login(self, user: User, client: TestClient | None = None) -> TestClient:
        """Log `user` in on `client` (default: the test's client) and return the client."""
        client = client or self.client
        resp = await client.post(
            "/api/session",
            json={"username": user.username, "password": PASSWORD},
            headers=self.headers(),
        )
        assert resp.status == 200, await resp.text()
        return client

    async def token(self, user: User) -> str:
        async with self.db.write() as session:
            return (await service.issue_api_token(session, user.id, "test", self.clock.now())).token

    async def socket(self, token: str, **kw: Any) -> ClientWebSocketResponse:
        """Open /ws with a bearer token and read the hello."""
        ws = await self.client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"}, **kw)
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        return ws

    async def new_client(self) -> TestClient:
        """A second browser: its own cookie jar, the same server."""
        other: TestClient = TestClient(self.client.server)
        await other.start_server()
        return other


# -- roster and dispatch builders (dispatch tests) ---------------------------------------------


async def make_interpreter(
    factory: Factory,
    languages: list[str],
    *,
    gender: str | None = None,
    specializations: list[str] | None = None,
    status: str = "available",
    idle_since: Any = None,
    display_name: str | None = None,
) -> User:
    """An interpreter user with a profile, languages and skills, written directly as rows."""
    from interpreters.models import (
        Interpreter,
        InterpreterLanguage,
        InterpreterSpecialization,
        Presence,
        Specialization,
    )

    user = await factory.user(Role.INTERPRETER, display_name=display_name)
    now = factory.clock.now()
    async with factory.db.write() as session:
        session.add(
            Interpreter(
                user_id=user.id,
                gender=gender,
                status=Presence(status),
                status_changed_at=now,
                idle_since=idle_since or now,
            )
        )
        for tag in languages:
            session.add(InterpreterLanguage(interpreter_id=user.id, tag=tag))
        for name in specializations or []:
            if await session.get(Specialization, name) is None:
                session.add(Specialization(name=name))
                await session.flush()
            session.add(InterpreterSpecialization(interpreter_id=user.id, specialization=name))
    return user


async def set_presence(factory: Factory, user: User, status: str) -> None:
    """What the roster's status endpoint does: change one's own status, then tell listeners."""
    from infra.appkeys import CLOCK
    from interpreters.keys import PRESENCE_LISTENERS
    from interpreters.models import Presence
    from interpreters.presence import set_own_status

    app = factory.client.app
    async with factory.db.write() as session:
        await set_own_status(session, user.id, Presence(status), app[CLOCK].now())
    for listener in app[PRESENCE_LISTENERS]:
        await listener(app, user.id, Presence(status))


async def make_specialization(factory: Factory, name: str) -> None:
    """An entry of the admin-managed list of specialisations."""
    from interpreters.models import Specialization

    async with factory.db.write() as session:
        if await session.get(Specialization, name) is None:
            session.add(Specialization(name=name))
