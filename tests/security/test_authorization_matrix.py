"""Every HTTP operation of /api/openapi.json and every socket message type, tried by every kind
of caller: what each may do follows from the roles the operation declares (`x-roles`) and
from whose resource it names, so an endpoint added without a check fails here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlmodel import select

from accounts.models import Role
from dispatch.models import Offer
from infra.openapi import PUBLIC as PUBLIC_ROLES
from infra.openapi import ApiRoutes
from tests.factories import PASSWORD, Factory, make_interpreter
from tests.security.examples import example_body
from wire.client import CLIENT_MESSAGE_TYPES

# Operations anyone may call without logging in; every other one must declare its roles.
PUBLIC = {
    ("post", "/api/session"),
    # A one-time password link is its own credential: the person cannot log in yet.
    ("post", "/api/password-link"),
    ("post", "/api/password-link/user"),
    # An invitation link is the guest's credential: a guest has no account.
    ("post", "/api/guest/session"),
    # Language names only (no figures), for whoever holds a link to an open room.
    ("post", "/api/guest/languages"),
    # A terminal's device link is its credential: a terminal has no password.
    ("post", "/api/terminal/session"),
}
# Operations that end the caller's own login run last for each caller.
LAST = {("delete", "/api/session")}


@dataclass
class Caller:
    """One kind of caller: how it authenticates and what it owns."""

    name: str
    role: str | None  # None: anonymous
    user_id: str | None = None
    cookie: str | None = None
    token: str | None = None
    owns: set[str] = field(default_factory=set)  # path parameters naming its resources
    cookie_name: str = "tolk_session"
    interprets: bool = False  # a colleague with an in-house interpreter profile

    def admitted(self, roles: tuple[str, ...]) -> bool:
        """Whether operations of `roles` admit this caller: by its role, or as a colleague
        acting as an interpreter where interpreters are admitted."""
        if "any" in roles or self.role in roles:
            return True
        return self.interprets and "interpreter" in roles

    def headers(self, origin: str) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        if self.cookie is not None:
            return {"Cookie": f"{self.cookie_name}={self.cookie}", "Origin": origin}
        return {"Origin": origin}


@dataclass
class World:
    callers: list[Caller]
    params: dict[str, str]  # path parameter -> the id of a resource someone owns
    call_id: str
    room_id: str


async def _cookie(factory: Factory, username: str) -> str:
    client = factory.client
    resp = await client.post(
        "/api/session",
        json={"username": username, "password": PASSWORD},
        headers=factory.headers(),
    )
    assert resp.status == 200, await resp.text()
    value = resp.cookies["tolk_session"].value
    client.session.cookie_jar.clear()
    return value


async def build_world(factory: Factory) -> World:
    """Two organisations, a call between counsellor A and one interpreter, a request of
    counsellor A offered to another interpreter, a booking of counsellor A in that
    interpreter's language, and one caller of each kind."""
    org_a = await factory.organization("Org A")
    org_b = await factory.organization("Org B")
    pool = await factory.organization("Pool")
    counsellor_a = await factory.user(Role.COUNSELLOR, organization=org_a)
    counsellor_b = await factory.user(Role.COUNSELLOR, organization=org_b)
    finance_a = await factory.user(Role.FINANCE, organization=org_a)
    finance_b = await factory.user(Role.FINANCE, organization=org_b)
    admin = await factory.user(Role.ADMIN, organization=org_a)
    management = await factory.user(Role.MANAGEMENT, organization=org_a)
    in_call = await make_interpreter(factory, ["ar"], status="busy")
    free = await make_interpreter(factory, ["uk"], status="available")
    machine = await factory.user(Role.COUNSELLOR, organization=org_b)
    bystander = await factory.user(Role.COUNSELLOR, organization=pool)
    call = await factory.call(counsellor_a, in_call, language="ar")
    terminal, terminal_cookie = await factory.terminal(org_a)
    other_terminal, _ = await factory.terminal(org_b, "Infopoint")

    cookie_a = await _cookie(factory, counsellor_a.username)
    resp = await factory.client.post(
        "/api/requests",
        json={"language": "uk"},
        headers={"Cookie": f"tolk_session={cookie_a}", "Origin": factory.origin},
    )
    assert resp.status == 201, await resp.text()
    request_id = (await resp.json())["request"]["id"]
    async with factory.db.read() as session:
        offer = (await session.exec(select(Offer).where(Offer.request_id == request_id))).one()
    resp = await factory.client.post(
        "/api/bookings",
        json={"language": "uk", "local_start": "2026-11-27T10:00", "duration_min": 60},
        headers={"Cookie": f"tolk_session={cookie_a}", "Origin": factory.origin},
    )
    assert resp.status == 201, await resp.text()
    booking_id = (await resp.json())["booking"]["id"]
    spare_token_id = await _token_id(factory, bystander.id)
    # After the request, so that it is not offered to them.
    colleague = await factory.user(Role.COUNSELLOR, organization=org_b)
    await make_interpreter(factory, ["fa"], user=colleague, pool_id="in_house", status="away")
    room_id, invitation_id, guest_cookie = await _room_with_guest(factory, cookie_a)

    callers = [
        Caller("anonymous", None),
        # Before counsellor A, whose hang-up of the room ends the guest's session.
        Caller("guest of the room", "guest", cookie=guest_cookie, cookie_name="tolk_guest"),
        Caller(
            "counsellor A",
            "counsellor",
            counsellor_a.id,
            cookie=cookie_a,
            owns={"request_id", "call_id", "room_id", "invitation_id", "booking_id"},
        ),
        Caller(
            "counsellor B",
            "counsellor",
            counsellor_b.id,
            cookie=await _cookie(factory, counsellor_b.username),
        ),
        Caller(
            "interpreter in the call",
            "interpreter",
            in_call.id,
            cookie=await _cookie(factory, in_call.username),
            owns={"call_id"},
        ),
        Caller(
            "interpreter not in it",
            "interpreter",
            free.id,
            cookie=await _cookie(factory, free.username),
            # An open booking of its language: it may see and claim it.
            owns={"offer_id", "booking_id"},
        ),
        Caller(
            "finance A", "finance", finance_a.id, cookie=await _cookie(factory, finance_a.username)
        ),
        Caller(
            "finance B", "finance", finance_b.id, cookie=await _cookie(factory, finance_b.username)
        ),
        Caller(
            "admin",
            "admin",
            admin.id,
            cookie=await _cookie(factory, admin.username),
            owns={
                "user_id",
                "token_id",
                "tariff_id",
                "grant_id",
                "site_id",
                "terminal_id",
                "pool_id",
            },
        ),
        Caller("terminal of A", "terminal", terminal.id, cookie=terminal_cookie),
        Caller(
            "management",
            "management",
            management.id,
            cookie=await _cookie(factory, management.username),
        ),
        Caller("bearer token", "counsellor", machine.id, token=await factory.token(machine)),
        Caller(
            "counsellor who interprets in the house",
            "counsellor",
            colleague.id,
            cookie=await _cookie(factory, colleague.username),
            interprets=True,
        ),
    ]
    params = {
        "request_id": request_id,
        "offer_id": offer.id,
        "call_id": call.id,
        "user_id": free.id,
        "token_id": spare_token_id,
        "tariff_id": await _tariff_id(factory),
        "grant_id": await _grant_id(factory, finance_b.id, org_a.id),
        # No caller owns a running connection test: every caller must get 403 or 404.
        "precall_id": "0" * 32,
        "room_id": room_id,
        "invitation_id": invitation_id,
        "site_id": (await factory.site(org_a)).id,
        "terminal_id": other_terminal.id,
        "booking_id": booking_id,
        "pool_id": "external",
    }
    return World(callers, params, call.id, room_id)


async def _room_with_guest(factory: Factory, cookie: str) -> tuple[str, str, str]:
    """Counsellor A's consultation room, an unused invitation to it, and its guest's cookie."""
    headers = {"Cookie": f"tolk_session={cookie}", "Origin": factory.origin}
    client = factory.client
    room = (await (await client.post("/api/rooms", headers=headers)).json())["room"]
    path = f"/api/rooms/{room['id']}/invitations"
    used = await (await client.post(path, headers=headers)).json()
    resp = await client.post(
        "/api/guest/session", json={"token": used["token"]}, headers=factory.headers()
    )
    assert resp.status == 201, await resp.text()
    guest_cookie = resp.cookies["tolk_guest"].value
    client.session.cookie_jar.clear()
    unused = await (await client.post(path, headers=headers)).json()
    return room["id"], unused["id"], guest_cookie


async def _token_id(factory: Factory, user_id: str) -> str:
    from accounts import service

    async with factory.db.write() as session:
        return (await service.issue_api_token(session, user_id, "spare", factory.clock.now())).id


async def _grant_id(factory: Factory, user_id: str, organization_id: str) -> str:
    from billing import scope

    async with factory.db.write() as session:
        made, _ = await scope.grant(session, user_id, organization_id, None, factory.clock.now())
        return made.id


async def _tariff_id(factory: Factory) -> str:
    tariff = await factory.tariff(
        "Matrix",
        factory.clock.now().date(),
        organization_id=None,
        unit_s=60,
        minimum_s=0,
        price_per_unit_cents=100,
        currency="EUR",
    )
    return tariff.id


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    roles: tuple[str, ...]
    body: dict[str, Any] | None
    raw_type: str | None
    params: tuple[str, ...]

    def allows(self, caller: Caller) -> bool:
        """Whether the caller's role is declared and it owns every resource named."""
        if caller.role is None:
            return False
        if caller.role == "guest":
            return "guest" in self.roles  # "any" means any logged-in user: never a guest
        if not caller.admitted(self.roles):
            return False
        if caller.role == "admin" and "admin" in self.roles:
            # An admin may see everyone's requests, calls and users, but a connection test
            # belongs to the one person whose camera it echoes.
            return self.params != ("precall_id",)
        return all(p in caller.owns for p in self.params)


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            body = None
            raw_type = None
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = example_body(content["application/json"]["schema"], document)
            elif content:
                raw_type = next(iter(content))
            found.append(
                Operation(
                    method,
                    path,
                    tuple(op["x-roles"]),
                    body,
                    raw_type,
                    tuple(re.findall(r"{(\w+)}", path)),
                )
            )
    return sorted(found, key=lambda o: ((o.method, o.path) in LAST, o.path, o.method))


async def _call(factory: Factory, world: World, op: Operation, caller: Caller) -> int:
    path = op.path
    for name in op.params:
        path = path.replace("{" + name + "}", world.params[name])
    headers = caller.headers(factory.origin)
    kwargs: dict[str, Any] = {}
    if op.body is not None:
        kwargs["json"] = op.body
    elif op.raw_type is not None:
        kwargs["data"] = b"username\n"
        headers["Content-Type"] = op.raw_type
    factory.client.session.cookie_jar.clear()
    resp = await factory.client.request(op.method, path, headers=headers, **kwargs)
    await resp.read()
    return resp.status


class TestHttpMatrix:
    async def test_every_operation_refuses_every_caller_it_does_not_declare(self, factory):
        """Anonymous gets 401, a wrong role 403, someone else's resource 403 or 404; the
        declared roles get through (no 401/403) and nobody gets a 5xx."""
        world = await build_world(factory)
        document = await (await factory.client.get("/api/openapi.json")).json()
        ops = operations(document)
        undeclared = [
            (o.method, o.path) for o in ops if not o.roles and (o.method, o.path) not in PUBLIC
        ]
        assert undeclared == [], "operations without declared roles"
        unknown = {p for o in ops for p in o.params} - set(world.params)
        assert unknown == set(), "path parameters that name no resource of build_world"

        wrong: list[str] = []
        for caller in world.callers:
            for op in ops:
                status = await _call(factory, world, op, caller)
                where = f"{op.method.upper()} {op.path} as {caller.name}: {status}"
                if status >= 500:
                    wrong.append(where + " (server error)")
                elif (op.method, op.path) in PUBLIC:
                    if 200 <= status < 300:
                        wrong.append(where + " (public operation succeeded with a made-up body)")
                elif op.allows(caller):
                    if status in (401, 403):
                        wrong.append(where + " (refused a declared caller)")
                elif caller.role is None or (caller.role == "guest" and "guest" not in op.roles):
                    # A guest's cookie is no login: every API but the guest's own answers 401.
                    if status != 401:
                        wrong.append(where + " (expected 401)")
                elif not caller.admitted(op.roles):
                    if status != 403:
                        wrong.append(where + " (expected 403)")
                elif status not in (403, 404):
                    wrong.append(where + " (someone else's resource: expected 403 or 404)")
        assert wrong == []

    async def test_every_api_route_is_a_declared_operation(self, factory):
        """Nothing under /api is reachable except through a declaration of its roles: every
        route the app serves there is an operation of the document."""
        document = await (await factory.client.get("/api/openapi.json")).json()
        declared = {(o.method.upper(), o.path) for o in operations(document)}
        declared.add(("GET", "/api/openapi.json"))
        served = set()
        for route in factory.client.app.router.routes():
            path = re.sub(r"{(\w+)(?::[^}]*)?}", r"{\1}", route.resource.canonical)
            if path.startswith("/api") and route.method != "HEAD":
                served.add((route.method, path))
        assert served - declared == set()

    def test_an_operation_without_roles_cannot_be_declared(self):
        """Leaving out `roles` fails where the route is written, and a public operation
        cannot ask for the caller's identity."""
        api = ApiRoutes(tag="test")

        async def handler(request: Any, identity: Any) -> Any:
            """Nothing"""
            raise AssertionError("never called")

        with pytest.raises(TypeError):
            api.get("/api/nothing")(handler)
        with pytest.raises(TypeError):
            api.get("/api/nothing", roles=PUBLIC_ROLES)(handler)

    async def test_anonymous_is_asked_to_log_in_before_any_body_is_read(self, factory):
        """An anonymous request with an empty, wrong or non-JSON body gets 401, never a 415
        or a 422 that would describe the body the operation wants."""
        document = await (await factory.client.get("/api/openapi.json")).json()
        for op in operations(document):
            if (op.method, op.path) in PUBLIC or op.body is None:
                continue
            path = re.sub(r"{\w+}", "x", op.path)
            attempts: list[dict[str, Any]] = [
                {"json": {}},
                {"data": b"a=1", "headers": {"Content-Type": "text/plain"}},
            ]
            for kwargs in attempts:
                resp = await factory.client.request(op.method, path, **kwargs)
                body = await resp.json()
                assert resp.status == 401, (op.path, kwargs, body)
                assert "fields" not in body["error"]


# The socket messages that name a call, as a non-participant would send them.
CALL_MESSAGES: dict[str, dict[str, Any]] = {
    "call.join": {},
    "signal": {"data": {"candidate": None}},
    "call.media": {"state": "connected"},
    "call.hangup": {},
}
# The socket messages that name a consultation room, as a non-participant would send them.
ROOM_MESSAGES: dict[str, dict[str, Any]] = {
    "room.join": {},
    "signal": {"to": "someone", "data": {"candidate": None}},
    "room.media": {"peer": "someone", "state": "connected"},
    "room.leave": {},
}
# Messages that name nothing of anyone else's.
OWN_MESSAGES = {"ping", "presence", "languages.watch"}
# The roles whose pages show the live language figures: they may watch them.
FIGURE_ROLES = {"counsellor", "terminal", "admin", "management"}


class TestSocketMatrix:
    def test_every_socket_message_type_is_in_the_matrix(self):
        """A new socket message type must be added to this matrix."""
        assert set(CALL_MESSAGES) | set(ROOM_MESSAGES) | OWN_MESSAGES == set(CLIENT_MESSAGE_TYPES)

    async def test_messages_about_someone_elses_call_are_forbidden(self, factory):
        """Every socket caller outside the call gets `forbidden` for each call message."""
        world = await build_world(factory)
        outsiders = [c for c in world.callers if c.role is not None and "call_id" not in c.owns]
        assert len(outsiders) == 10
        for caller in outsiders:
            # A colleague who interprets has a second kind of socket: the interpreter's page.
            for url in ("/ws", "/ws?as=interpreter") if caller.interprets else ("/ws",):
                ws = await factory.client.ws_connect(url, headers=caller.headers(factory.origin))
                assert (await ws.receive_json(timeout=REPLY_WAIT_S))["type"] == "hello"
                for kind, fields in CALL_MESSAGES.items():
                    await ws.send_json(
                        {"type": kind, "call_id": world.call_id, "ref": kind, **fields}
                    )
                    reply = await _reply(ws, kind)
                    assert (reply["type"], reply.get("code")) == ("error", "forbidden"), (
                        caller.name,
                        url,
                        reply,
                    )
                await ws.close()

    async def test_messages_about_a_room_one_is_not_in_are_forbidden(self, factory):
        """Every socket caller outside the room gets `forbidden` for each room message."""
        world = await build_world(factory)
        outsiders = [c for c in world.callers if c.role not in (None, "guest")]
        for caller in [c for c in outsiders if "room_id" not in c.owns]:
            ws = await factory.client.ws_connect("/ws", headers=caller.headers(factory.origin))
            assert (await ws.receive_json(timeout=REPLY_WAIT_S))["type"] == "hello"
            for kind, fields in ROOM_MESSAGES.items():
                await ws.send_json({"type": kind, "room_id": world.room_id, "ref": kind, **fields})
                reply = await _reply(ws, kind)
                assert (reply["type"], reply.get("code")) == ("error", "forbidden"), (
                    caller.name,
                    reply,
                )
            await ws.close()

    async def test_only_the_pages_that_show_the_figures_may_watch_them(self, factory):
        """`languages.watch` is answered for counsellors, terminals, admins and management;
        interpreters (a colleague's interpreter socket too), finance and guests get
        `forbidden`."""
        world = await build_world(factory)
        for caller in [c for c in world.callers if c.role is not None]:
            for url in ("/ws", "/ws?as=interpreter") if caller.interprets else ("/ws",):
                ws = await factory.client.ws_connect(url, headers=caller.headers(factory.origin))
                await ws.send_json({"type": "languages.watch", "watch": False, "ref": "w"})
                reply = await _reply(ws, "w")
                watches = caller.role in FIGURE_ROLES and url == "/ws"
                expected = ("languages.watching", None) if watches else ("error", "forbidden")
                assert (reply["type"], reply.get("code")) == expected, (caller.name, url, reply)
                await ws.close()

    async def test_the_counsellor_and_the_guest_may_join_their_room(self, factory):
        """The room's counsellor and its guest are answered `room.joined`."""
        world = await build_world(factory)
        for caller in world.callers:
            if "room_id" not in caller.owns and caller.role != "guest":
                continue
            ws = await factory.client.ws_connect("/ws", headers=caller.headers(factory.origin))
            await ws.send_json({"type": "room.join", "room_id": world.room_id, "ref": "j"})
            assert (await _reply(ws, "j"))["type"] == "room.joined", caller.name
            await ws.close()

    async def test_the_participants_may_join_their_call(self, factory):
        """The counsellor and the interpreter of the call are answered `call.joined`."""
        world = await build_world(factory)
        for caller in world.callers:
            if "call_id" not in caller.owns:
                continue
            ws = await factory.client.ws_connect("/ws", headers=caller.headers(factory.origin))
            await ws.send_json({"type": "call.join", "call_id": world.call_id, "ref": "j"})
            assert (await _reply(ws, "j"))["type"] == "call.joined"
            await ws.close()


# An answer comes in milliseconds; the bound only ends a test whose answer never comes. It is
# generous because a shared CI machine can stall every process for seconds at a time.
REPLY_WAIT_S = 30


async def _reply(ws: Any, ref: str) -> dict[str, Any]:
    """The answer carrying `ref`, skipping news."""
    while True:
        message: dict[str, Any] = await ws.receive_json(timeout=REPLY_WAIT_S)
        if message.get("ref") == ref:
            return message


pytestmark = pytest.mark.timeout(120)
