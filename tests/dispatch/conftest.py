"""Helpers of the dispatch tests: people with tokens and sockets, and waiting for events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient

from accounts.models import Role, User
from dispatch.announce import PUBLISHER
from dispatch.sweeper import sweep
from infra.appkeys import DATABASE, SETTINGS
from infra.config import Settings
from infra.db import Database
from interpreters.models import Interpreter
from tests.factories import Factory, make_interpreter


@dataclass
class Person:
    """A user with an API token and one open socket."""

    user: User
    token: str
    ws: ClientWebSocketResponse
    client: TestClient

    @property
    def id(self) -> str:
        return self.user.id

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def post(self, path: str, json: Any = None) -> tuple[int, Any]:
        resp = await self.client.post(path, json=json, headers=self.auth())
        body = await resp.json() if resp.status != 204 else None
        return resp.status, body

    async def get(self, path: str) -> tuple[int, Any]:
        resp = await self.client.get(path, headers=self.auth())
        return resp.status, await resp.json()

    async def delete(self, path: str) -> tuple[int, Any]:
        resp = await self.client.delete(path, headers=self.auth())
        return resp.status, await resp.json()

    async def next_event(self, kind: str, within: float = 5.0) -> dict[str, Any]:
        """The next message of this type on the socket (others are skipped)."""

        async def read() -> dict[str, Any]:
            while True:
                msg = await self.ws.receive_json()
                if msg.get("type") == kind:
                    return msg

        return await asyncio.wait_for(read(), within)

    async def round_trip(self) -> list[dict[str, Any]]:
        """The messages that arrive before the answer to a ping: all the server had sent
        this socket by then (it handles a socket's frames in order, once it is greeted)."""
        await self.ws.send_json({"type": "ping", "ref": "round-trip"})

        async def read() -> list[dict[str, Any]]:
            before: list[dict[str, Any]] = []
            while True:
                msg = await self.ws.receive_json()
                if msg.get("type") == "pong" and msg.get("ref") == "round-trip":
                    return before
                before.append(msg)

        return await asyncio.wait_for(read(), 5)

    async def no_event(self, kind: str) -> None:
        """Assert that no message of this type arrives (after a ping round trip)."""
        for msg in await self.round_trip():
            assert msg.get("type") != kind, msg


@dataclass
class Desk:
    """The test's view of dispatch: make people, ask, sweep."""

    factory: Factory

    async def counsellor(self) -> Person:
        user = await self.factory.user(Role.COUNSELLOR)
        return await self._person(user)

    async def interpreter(self, languages: list[str], **kw: Any) -> Person:
        user = await make_interpreter(self.factory, languages, **kw)
        return await self._person(user)

    async def _person(self, user: User) -> Person:
        token = await self.factory.token(user)
        ws = await self.factory.socket(token)
        person = Person(user, token, ws, self.factory.client)
        # The state a socket is sent on connect follows hello, read from the database in
        # the meantime: a request or offer the test made at once could be in it, and the
        # test would take that copy for news of what it does next.
        await person.round_trip()
        return person

    async def ask(self, who: Person, language: str, **preferences: Any) -> dict[str, Any]:
        # Requests made one after another: FIFO needs distinct creation times.
        self.factory.clock.advance(0.001)
        status, body = await who.post(
            "/api/requests", {"language": language, "preferences": preferences}
        )
        assert status == 201, body
        return body["request"]

    async def sweep(self, advance_s: float = 0.0) -> None:
        app = self.factory.client.app
        now = self.factory.clock.advance(advance_s)
        await sweep(app[DATABASE], app[PUBLISHER], app[SETTINGS], now)


@pytest.fixture
def desk(factory: Factory) -> Desk:
    return Desk(factory)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dispatch_settings(**values): build the app with these settings changed"
    )


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The suite's settings, changed by a test's `dispatch_settings` marker."""
    marker = request.node.get_closest_marker("dispatch_settings")
    return settings.model_copy(update=marker.kwargs) if marker else settings


async def status_of(db: Database, user_id: str) -> str:
    """An interpreter's presence status as stored."""
    async with db.read() as session:
        interpreter = await session.get(Interpreter, user_id)
        assert interpreter is not None
        return str(interpreter.status)


def minutes_ago(factory: Factory, minutes: float) -> datetime:
    """A moment before the test's current time."""
    return factory.clock.now() - timedelta(minutes=minutes)
