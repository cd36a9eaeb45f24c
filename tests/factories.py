"""Builders of test data and of logged-in clients, through Tolk's own services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import ClientWebSocketResponse, TCPConnector
from aiohttp.test_utils import TestClient
from sqlmodel import select

from accounts import service
from accounts.models import Organization, Role, Site, User
from accounts.passwords import hash_password_sync
from billing.models import Tariff
from calls.models import Call
from infra.clock import ManualClock
from infra.db import Database

PASSWORD = "correct horse battery"
_HASH = hash_password_sync(PASSWORD)
_counter = itertools.count(1)


async def _request_row(
    session: Any,
    counsellor: User,
    organization_id: str,
    language: str,
    state: str,
    created_at: datetime,
    expires_at: datetime,
) -> Any:
    """An interpretation request row as dispatch writes it, flushed so that it has its id."""
    from dispatch.models import InterpretationRequest, RequestState

    request = InterpretationRequest(
        counsellor_id=counsellor.id,
        organization_id=organization_id,
        language=language,
        state=RequestState(state),
        created_at=created_at,
        updated_at=created_at,
        expires_at=expires_at,
        site_id=counsellor.site_id,
    )
    session.add(request)
    await session.flush()
    return request


async def _call_row(
    session: Any,
    request: Any,
    interpreter: User,
    state: str,
    created_at: datetime,
    connected_at: datetime | None,
    ended_at: datetime | None,
    end_reason: str | None,
) -> Call:
    """The call of an accepted request, linked to it both ways."""
    from calls.models import CallState

    call = Call(
        request_id=request.id,
        counsellor_id=request.counsellor_id,
        interpreter_id=interpreter.id,
        organization_id=request.organization_id,
        language=request.language,
        state=CallState(state),
        created_at=created_at,
        connected_at=connected_at,
        ended_at=ended_at,
        end_reason=end_reason,
        site_id=request.site_id,
    )
    session.add(call)
    await session.flush()
    request.call_id = call.id
    return call


async def _accepted_call(
    session: Any,
    counsellor: User,
    interpreter: User,
    language: str,
    *,
    state: str,
    created_at: datetime,
    expires_at: datetime,
    connected_at: datetime | None,
    ended_at: datetime | None,
    end_reason: str | None,
) -> Call:
    """An accepted request of `counsellor` and its call with `interpreter`."""
    request = await _request_row(
        session,
        counsellor,
        counsellor.organization_id,
        language,
        "accepted",
        created_at,
        expires_at,
    )
    return await _call_row(
        session, request, interpreter, state, created_at, connected_at, ended_at, end_reason
    )


class _SecondBrowser(TestClient):
    """A client of a server that another client owns: closing it closes its own session
    and sockets only, never the shared server (which would shut the app down mid-test)."""

    async def close(self) -> None:
        if not self._closed:
            for resp in self._responses:
                resp.close()
            for ws in self._websockets:
                await ws.close()
            await self._session.close()
            self._closed = True


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

    async def site(
        self, organization: Organization, name: str | None = None, time_zone: str = "Europe/Berlin"
    ) -> Site:
        """A site of `organization`."""
        from accounts.sites import NewSite, create_site

        new = NewSite(organization.id, name or f"Site {next(_counter)}", time_zone=time_zone)
        async with self.db.write() as session:
            return await create_site(session, new, self.clock.now())

    async def user(
        self,
        role: Role = Role.COUNSELLOR,
        username: str | None = None,
        organization: Organization | None = None,
        display_name: str | None = None,
        machine: bool = False,
        site: Site | None = None,
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
                machine=machine,
                site_id=site.id if site else None,
            )

    async def terminal(
        self, organization: Organization | None = None, name: str = "Foyer"
    ) -> tuple[User, str]:
        """A terminal at a new site of the organisation, logged in with its device link: the
        terminal and its device session's cookie value."""
        from accounts import terminals
        from accounts.audit import SYSTEM, audited

        site = await self.site(organization or await self.organization())
        async with audited(self.db, self.clock, SYSTEM) as change:
            user, _, link = await terminals.add_terminal(change, name, site.id, 3600)
        login = await terminals.open_device_session(
            self.db, self.clock, link.secret, "127.0.0.1", 86400
        )
        return user, login.cookie_value

    async def tariff(self, name: str, valid_from: date = date(2025, 1, 1), **terms: Any) -> Tariff:
        """A tariff valid from `valid_from`; `terms` are its unit, price, minimum, owner."""
        async with self.db.write() as session:
            tariff = Tariff(name=name, valid_from=valid_from, created_at=self.clock.now(), **terms)
            session.add(tariff)
            await session.flush()
            return tariff

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

    async def new_client(self, address: str | None = None) -> TestClient:
        """A second browser: its own cookie jar, the same server; from another loopback
        address (`127.0.0.2`, ...) when given, which the server sees as `request.remote`."""
        kwargs: dict[str, Any] = {}
        if address is not None:
            kwargs["connector"] = TCPConnector(local_addr=(address, 0))
        other: TestClient = _SecondBrowser(self.client.server, **kwargs)
        await other.start_server()
        return other

    async def interpreter(
        self,
        languages: tuple[str, ...] = ("uk",),
        username: str | None = None,
        gender: str | None = None,
        specializations: tuple[str, ...] = (),
        display_name: str | None = None,
        organization: Organization | None = None,
        agency: str | None = None,
    ) -> User:
        """An interpreter user with a profile made through the roster service."""
        from interpreters import service as roster

        user = await self.user(Role.INTERPRETER, username, organization, display_name)
        async with self.db.write() as session:
            for name in specializations:
                await roster.add_specialization(session, name)
            await roster.upsert_profile(
                session,
                user.id,
                roster.ProfileData(
                    languages=roster.normalize_languages(languages),
                    gender=gender,
                    specializations=specializations,
                    agency=agency,
                ),
                self.clock.now(),
            )
        return user

    async def sockets_closed(self, user: User) -> None:
        """Wait until the server has processed the closing of every socket of `user`."""
        from interpreters.models import PresenceSocket
        from signaling.keys import HUB
        from tests.waiting import eventually

        async def gone() -> bool:
            if self.client.app[HUB].connections_of(user.id):
                return False
            async with self.db.read() as session:
                rows = await session.exec(
                    select(PresenceSocket).where(PresenceSocket.interpreter_id == user.id)
                )
                return rows.first() is None

        await eventually(gone)

    async def eventually_connections(self, user: User, count: int) -> None:
        """Wait until the server holds exactly `count` sockets of `user`."""
        from signaling.keys import HUB
        from tests.waiting import eventually

        async def settled() -> bool:
            return len(self.client.app[HUB].connections_of(user.id)) == count

        await eventually(settled)

    async def call(
        self,
        counsellor: User | None = None,
        interpreter: User | None = None,
        state: str = "connecting",
        language: str = "uk",
    ) -> Any:
        """A call between a counsellor and an interpreter (made when not given), written
        directly through the models: an accepted request, a busy interpreter, the call."""
        from datetime import timedelta

        from interpreters.models import Interpreter, Presence

        counsellor = counsellor or await self.user(Role.COUNSELLOR)
        interpreter = interpreter or await self.user(Role.INTERPRETER)
        now = self.clock.now()
        async with self.db.write() as session:
            profile = await session.get(Interpreter, interpreter.id)
            if profile is None:
                session.add(
                    Interpreter(
                        user_id=interpreter.id,
                        status=Presence.BUSY,
                        status_changed_at=now,
                        idle_since=now,
                    )
                )
            else:
                profile.status = Presence.BUSY
            return await _accepted_call(
                session,
                counsellor,
                interpreter,
                language,
                state=state,
                created_at=now,
                expires_at=now + timedelta(minutes=5),
                connected_at=now if state != "connecting" else None,
                ended_at=now if state == "ended" else None,
                end_reason="hangup" if state == "ended" else None,
            )

    async def token_for(self, user_id: str) -> str:
        """An API token for a user given by id."""
        async with self.db.write() as session:
            return (await service.issue_api_token(session, user_id, "test", self.clock.now())).token

    async def call_between(
        self,
        counsellor: User,
        interpreter: User,
        language: str = "uk",
        connected_at: datetime | None = None,
        ended_at: datetime | None = None,
        end_reason: str | None = "hangup",
    ) -> Call:
        """A call row and its accepted request, as dispatch leaves them; ended if ended_at."""
        created = connected_at or self.clock.now()
        async with self.db.write() as session:
            return await _accepted_call(
                session,
                counsellor,
                interpreter,
                language,
                state="ended" if ended_at else "connecting",
                created_at=created,
                expires_at=created,
                connected_at=connected_at,
                ended_at=ended_at,
                end_reason=end_reason if ended_at else None,
            )

    async def segment_between(
        self,
        counsellor: User,
        interpreter: User,
        room_id: str,
        connected_at: datetime,
        ended_at: datetime,
        end_reason: str = "hangup",
        language: str = "uk",
    ) -> Call:
        """An interpreter's ended segment of a consultation room: a call with the room's id."""
        call = await self.call_between(
            counsellor, interpreter, language, connected_at, ended_at, end_reason
        )
        async with self.db.write() as session:
            row = await session.get(Call, call.id)
            assert row is not None
            row.room_id = room_id
            session.add(row)
        call.room_id = room_id
        return call


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
    pool_id: str = "external",
    user: User | None = None,
) -> User:
    """An interpreter user with a profile, languages and skills, written directly as rows
    (with `user`: that user, of any role, gets the profile, as in-house staff do)."""
    from interpreters.models import (
        Interpreter,
        InterpreterLanguage,
        InterpreterSpecialization,
        Presence,
        Specialization,
    )

    if user is None:
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
                pool_id=pool_id,
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
    """What the roster's status endpoint does: change one's own status and announce it."""
    from infra.appkeys import CLOCK, DATABASE
    from interpreters.events import change_own_status
    from interpreters.keys import PRESENCE_NEWS
    from interpreters.models import Presence

    app = factory.client.app
    await change_own_status(
        app[DATABASE], app[CLOCK], app[PRESENCE_NEWS], user.id, Presence(status)
    )


async def make_specialization(factory: Factory, name: str) -> None:
    """An entry of the admin-managed list of specialisations."""
    from interpreters.models import Specialization

    async with factory.db.write() as session:
        if await session.get(Specialization, name) is None:
            session.add(Specialization(name=name))


async def make_finance_office(factory: Factory) -> User:
    """A finance user who sees every organisation's usage (the centre's finance office)."""
    from billing import scope

    user = await factory.user(Role.FINANCE)
    async with factory.db.write() as session:
        await scope.grant(session, user.id, None, None, factory.clock.now())
    return user


@dataclass
class History:
    """Requests, offers and calls written as rows at chosen moments, for the statistics:
    two organisations, a counsellor in each and a default interpreter."""

    factory: Factory
    org: Organization
    other_org: Organization
    counsellors: dict[str, User]
    default_interpreter: User

    @classmethod
    async def make(cls, factory: Factory) -> History:
        org = await factory.organization()
        other = await factory.organization()
        counsellors = {
            org.id: await factory.user(Role.COUNSELLOR, organization=org),
            other.id: await factory.user(Role.COUNSELLOR, organization=other),
        }
        history = cls(factory, org, other, counsellors, None)  # type: ignore[arg-type]
        history.default_interpreter = await history.interpreter("Default")
        return history

    async def interpreter(
        self, name: str, agency: str | None = None, languages: list[str] | None = None
    ) -> User:
        """An offline interpreter with a profile, an agency and languages."""
        from interpreters.models import Interpreter, InterpreterLanguage, Presence

        user = await self.factory.user(Role.INTERPRETER, display_name=name)
        now = self.factory.clock.now()
        async with self.factory.db.write() as session:
            session.add(
                Interpreter(
                    user_id=user.id,
                    agency=agency,
                    status=Presence.OFFLINE,
                    status_changed_at=now,
                    idle_since=now,
                )
            )
            for tag in languages or ["uk"]:
                session.add(InterpreterLanguage(interpreter_id=user.id, tag=tag))
        return user

    async def request(
        self,
        language: str,
        created_at: datetime,
        *,
        state: str | None = None,
        accept_after: float | None = None,
        connect: float | None = None,
        talk: float | None = 60,
        by: User | None = None,
        organization: Organization | None = None,
        counsellor: User | None = None,
    ) -> str:
        """A request made at `created_at`; with `accept_after`, accepted that many seconds
        later by `by`, connected `connect` seconds after that and ended after `talk`
        seconds (None: still live)."""
        from datetime import timedelta

        from dispatch.models import Offer, OfferState

        org = organization or self.org
        counsellor = counsellor or self.counsellors[org.id]
        interpreter = by or self.default_interpreter
        seconds = timedelta(seconds=1)
        state = state or ("accepted" if accept_after is not None else "expired")
        async with self.factory.db.write() as session:
            # Waiting requests wait a day: the sweeper must not expire them mid-test.
            request = await _request_row(
                session,
                counsellor,
                org.id,
                language,
                state,
                created_at,
                created_at + 86400 * seconds,
            )
            if accept_after is None:
                return request.id
            accepted = created_at + accept_after * seconds
            session.add(
                Offer(
                    request_id=request.id,
                    interpreter_id=interpreter.id,
                    state=OfferState.ACCEPTED,
                    created_at=created_at,
                    expires_at=created_at + 20 * seconds,
                    decided_at=accepted,
                )
            )
            connected = accepted + connect * seconds if connect is not None else None
            live = connected is not None and talk is None
            await _call_row(
                session,
                request,
                interpreter,
                "connected" if live else "ended",
                accepted,
                connected,
                ended_at=None
                if live
                else (connected + (talk or 0) * seconds if connected else accepted),
                end_reason=None if live else ("hangup" if connected else "failed"),
            )
            return request.id

    async def offer(self, interpreter: User, at: datetime, state: str) -> None:
        """An offer to `interpreter` at `at` of a request that then expired."""
        from datetime import timedelta

        from dispatch.models import Offer, OfferState

        request_id = await self.request("uk", at, state="expired")
        async with self.factory.db.write() as session:
            session.add(
                Offer(
                    request_id=request_id,
                    interpreter_id=interpreter.id,
                    state=OfferState(state),
                    created_at=at,
                    expires_at=at + timedelta(seconds=20),
                    decided_at=at + timedelta(seconds=20),
                )
            )


async def refresh_presence_of(app: Any) -> None:
    """The scheduler's presence refresh, with this app's resources."""
    from infra.appkeys import CLOCK, DATABASE, INSTANCE_ID, SETTINGS
    from interpreters.jobs import refresh_presence

    await refresh_presence(app[DATABASE], app[CLOCK], app[SETTINGS], app[INSTANCE_ID])


async def sweep_presence_of(app: Any) -> list[str]:
    """The scheduler's presence sweep, with this app's resources."""
    from infra.appkeys import CLOCK, DATABASE
    from interpreters.jobs import sweep_presence
    from interpreters.keys import PRESENCE_NEWS

    return await sweep_presence(app[DATABASE], app[CLOCK], app[PRESENCE_NEWS])
