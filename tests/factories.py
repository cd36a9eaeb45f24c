"""Builders of test data and of logged-in clients, through Tolk's own services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from accounts import service
from accounts.models import Organization, Role, User
from accounts.passwords import hash_password_sync
from dispatch.models import Call
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

    async def interpreter(
        self, display_name: str | None = None, organization: Organization | None = None
    ) -> User:
        """An interpreter user with a roster profile (offline, no languages)."""
        from interpreters.models import Interpreter

        user = await self.user(
            Role.INTERPRETER, organization=organization, display_name=display_name
        )
        now = self.clock.now()
        async with self.db.write() as session:
            session.add(Interpreter(user_id=user.id, status_changed_at=now, idle_since=now))
        return user

    async def call(
        self,
        counsellor: User,
        interpreter: User,
        language: str = "uk",
        connected_at: datetime | None = None,
        ended_at: datetime | None = None,
        end_reason: str | None = "hangup",
    ) -> Call:
        """A call row and its accepted request, as dispatch leaves them; ended if ended_at."""
        from dispatch.models import CallState, InterpretationRequest, RequestState

        now = self.clock.now()
        created = connected_at or now
        async with self.db.write() as session:
            request = InterpretationRequest(
                counsellor_id=counsellor.id,
                organization_id=counsellor.organization_id,
                language=language,
                state=RequestState.ACCEPTED,
                created_at=created,
                updated_at=created,
                expires_at=created,
            )
            session.add(request)
            await session.flush()
            call = Call(
                request_id=request.id,
                counsellor_id=counsellor.id,
                interpreter_id=interpreter.id,
                organization_id=counsellor.organization_id,
                language=language,
                state=CallState.ENDED if ended_at else CallState.CONNECTING,
                created_at=created,
                connected_at=connected_at,
                ended_at=ended_at,
                end_reason=end_reason if ended_at else None,
            )
            session.add(call)
            request.call_id = call.id
            session.add(request)
        return call
