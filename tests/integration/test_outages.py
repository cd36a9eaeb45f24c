"""Two `tolk serve` instances on PostgreSQL and a Redis server of the test's own, while
Redis blinks (stopped, or paused, at each moment of a call that matters) and while the
database refuses connections: calls still form or go on, nobody reloads, nothing is
billed twice, nobody is left busy, and the API answers 503 instead of 500."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from signaling.peers.client import ApiError, SocketError
from tests import backends
from tests.integration.parties import (
    Party,
    call_state,
    names_a_call,
    online,
    request_and_accept,
    usage_of,
)
from tests.integration.server import Backend, TolkServer
from tests.own_redis import OwnRedis, own_redis
from tests.waiting import eventually

pytestmark = [pytest.mark.media, pytest.mark.usefixtures("loopback_only")]

COUNSELLOR = "berater.jobcenter"
INTERPRETER = "olena"


@dataclass
class Cluster:
    """Instance `a` holds the counsellor, instance `b` the interpreter."""

    redis: OwnRedis
    a: TolkServer
    b: TolkServer
    database: str


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two instances sharing a fresh PostgreSQL database and a Redis of the module's own.
    Made once for the module (migrating and seeding costs ~20 s); each test leaves it as
    it found it: no open request, the interpreter available."""
    backends.need(backends.POSTGRES_URL, 5432, "PostgreSQL")
    tmp = tmp_path_factory.mktemp("outages")
    database = "tolk_outage_" + secrets.token_hex(6)
    with own_redis(tmp) as redis:
        asyncio.run(backends.postgres_execute(f"CREATE DATABASE {database}"))
        data = Backend(
            "postgres", f"{backends.POSTGRES_URL.rsplit('/', 1)[0]}/{database}", redis.url
        )
        env = {
            "TOLK_REDIS_NAMESPACE": "outage-" + secrets.token_hex(4),
            "TOLK_SECRET_KEY": "outage-test-" + secrets.token_hex(8),
            "TOLK_WRAP_UP_S": "0",
            "TOLK_SWEEP_INTERVAL_S": "0.5",
            "TOLK_WS_HEARTBEAT_S": "2",
            # Every API call reads its identity from the database (no cached cookie), so
            # that each one meets the database outage.
            "TOLK_IDENTITY_CACHE_S": "0",
        }
        servers = []
        for name in ("a", "b"):
            (tmp / name).mkdir()
            servers.append(TolkServer(tmp / name, data, **env))
        a, b = servers

        async def start() -> None:
            await a.prepare()
            await asyncio.gather(a.start(), b.start())

        try:
            asyncio.run(start())
            yield Cluster(redis, a, b, database)
        finally:
            a.stop()
            b.stop()
            asyncio.run(
                backends.postgres_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            )


@contextlib.asynccontextmanager
async def redis_out(cluster: Cluster, seconds: float, how: str) -> AsyncIterator[None]:
    """Redis stopped (or paused) from entering the block until `seconds` later."""
    loop = asyncio.get_running_loop()
    back_at = loop.time() + seconds
    if how == "pause":
        cluster.redis.pause()
    else:
        cluster.redis.stop()
    try:
        yield
        await asyncio.sleep(back_at - loop.time())  # the outage's length, not a wait
    finally:
        if how == "pause":
            cluster.redis.resume()
        else:
            cluster.redis.start()


def reconnects_of(party: Party) -> list[dict[str, Any]]:
    """The hellos a party's socket gets from now on: each one is a new socket."""
    hellos: list[dict[str, Any]] = []

    def listen(message: dict[str, Any]) -> None:
        if message.get("type") == "hello":
            hellos.append(message)

    party.client.listeners.append(listen)
    return hellos


async def media_flows(*peers: Any, frames: int = 15) -> None:
    for peer in peers:
        await asyncio.wait_for(peer.connected.wait(), 30)
        await peer.sink.wait_for_frames("video", peer.sink.frames["video"] + frames, 20)


async def finish(
    counsellor: Party, interpreter: Party, call_id: str, mine: Any, theirs: Any
) -> None:
    """Hang up; the call is billed once and the interpreter is free again."""
    ended = asyncio.ensure_future(
        interpreter.client.wait_for(call_state(call_id, "ended"), timeout_s=15)
    )
    await mine.hangup()
    assert (await ended)["call"]["end_reason"] == "hangup"

    async def available() -> bool:
        me = await interpreter.request("GET", "/api/interpreters/me")
        return bool(me["interpreter"]["status"] == "available")

    await eventually(available, timeout=10)
    async with online(counsellor.client.url, "finanzen", socket=False) as finance:
        assert len(await usage_of(finance, call_id)) == 1


async def take_offer(counsellor: Party, interpreter: Party, language: str) -> dict[str, Any]:
    offer = asyncio.ensure_future(interpreter.client.wait_for("offer", timeout_s=15))
    await counsellor.request("POST", "/api/requests", {"language": language})
    return dict((await offer)["offer"])


async def join_both(counsellor: Party, interpreter: Party, call_id: str) -> tuple[Any, Any]:
    mine = counsellor.peer(call_id, "counsellor")
    theirs = interpreter.peer(call_id, "interpreter")
    await asyncio.gather(mine.join(), theirs.join())
    return mine, theirs


MOMENTS = [
    pytest.param("offer", 5, "stop", id="offer-out-5s"),
    pytest.param("accept", 5, "pause", id="accept-5s-paused"),
    pytest.param("accept", 30, "stop", id="accept-30s"),
    pytest.param("join", 5, "stop", id="join-5s"),
    pytest.param("signal", 5, "pause", id="mid-call-signalling-5s-paused"),
]


class TestRedisBlinks:
    @pytest.mark.timeout(180)
    @pytest.mark.parametrize(("moment", "seconds", "how"), MOMENTS)
    async def test_the_call_forms_or_goes_on(self, cluster, moment, seconds, how):
        """Redis away at one moment of a call, counsellor and interpreter on different
        instances: the call forms (or goes on) once Redis is back, the counsellor's open
        socket hears of it without a reconnect, the call is billed once, and the
        interpreter is free again afterwards."""
        async with (
            online(cluster.b.url, INTERPRETER) as interpreter,
            online(cluster.a.url, COUNSELLOR) as counsellor,
        ):
            await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
            hellos = reconnects_of(counsellor) + reconnects_of(interpreter)
            if moment == "offer":
                async with redis_out(cluster, seconds, how):
                    # The offer is published while Redis is away; the request answers.
                    offered = asyncio.ensure_future(interpreter.client.wait_for("offer", 30))
                    await counsellor.request("POST", "/api/requests", {"language": "uk"})
                call_news = asyncio.ensure_future(counsellor.client.wait_for(names_a_call, 15))
                call = await interpreter.request(
                    "POST", f"/api/offers/{(await offered)['offer']['id']}/accept"
                )
                await call_news
                mine, theirs = await join_both(counsellor, interpreter, call["call"]["id"])
            elif moment == "accept":
                offer = await take_offer(counsellor, interpreter, "uk")
                call_news = asyncio.ensure_future(
                    counsellor.client.wait_for(names_a_call, seconds + 15)
                )
                async with redis_out(cluster, seconds, how):
                    call = await interpreter.request("POST", f"/api/offers/{offer['id']}/accept")
                    # As the interpreter's page does: join at once, during the outage.
                    theirs = interpreter.peer(call["call"]["id"], "interpreter")
                    await theirs.join()
                # The counsellor's open socket hears of the call once Redis is back.
                news = await call_news
                call_id = (news.get("call") or {}).get("id") or news["request"]["call_id"]
                assert call_id == call["call"]["id"]
                mine = counsellor.peer(call_id, "counsellor")
                await mine.join()
            elif moment == "join":
                offer = await take_offer(counsellor, interpreter, "uk")
                call_news = asyncio.ensure_future(counsellor.client.wait_for(names_a_call, 15))
                call = await interpreter.request("POST", f"/api/offers/{offer['id']}/accept")
                await call_news
                async with redis_out(cluster, seconds, how):
                    # Both join while Redis is away: answered, not internal_error; the
                    # negotiation's signals wait and go out in order once it is back.
                    mine, theirs = await join_both(counsellor, interpreter, call["call"]["id"])
            else:
                call_id, mine, theirs = await request_and_accept(counsellor, interpreter, "uk")
                await media_flows(mine, theirs)
                async with redis_out(cluster, seconds, how):
                    # Media keeps flowing peer to peer; a renegotiation's signals sent
                    # now are held, not refused.
                    await media_flows(mine, theirs)
                    assert mine.negotiator is not None
                    await mine.negotiator.offer()
                assert mine.negotiator.generation == 2
            await media_flows(mine, theirs)
            assert hellos == [], "a socket had to reconnect"
            await finish(counsellor, interpreter, mine.call_id, mine, theirs)


def api_calls(offer_id: str, call_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/api/me", None),
        ("GET", "/api/languages", None),
        ("GET", "/api/interpreters/me", None),
        ("PUT", "/api/interpreters/me/status", {"status": "available"}),
        ("POST", "/api/requests", {"language": "ar"}),
        ("POST", f"/api/offers/{offer_id}/accept", None),
        ("GET", f"/api/calls/{call_id}", None),
    ]


async def terminate_backends(admin: asyncpg.Connection, database: str) -> None:
    """End every connection to the database, again until none is left: one still logging
    in when the database stopped taking new ones may slip through the first round."""
    for _ in range(50):
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
        if not ended:
            return
        await asyncio.sleep(0.1)  # a terminated backend leaves pg_stat_activity shortly after


def events_in(server: TolkServer) -> list[dict[str, Any]]:
    events = []
    for line in server.log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


class TestDatabaseRefuses:
    @pytest.mark.timeout(120)
    async def test_every_answer_is_503_and_all_works_after_without_a_restart(self, cluster):
        """PostgreSQL refuses connections for 10 s: every API answer is 503 `unavailable`
        with Retry-After, sockets stay open, /readyz says the database is down within a
        second, each instance logs one warning and one recovery; afterwards a request is
        offered and accepted as if nothing happened."""
        admin = await asyncpg.connect(backends.POSTGRES_DSN)
        before = {server.url: len(events_in(server)) for server in (cluster.a, cluster.b)}
        async with (
            online(cluster.b.url, INTERPRETER) as interpreter,
            online(cluster.a.url, COUNSELLOR) as counsellor,
        ):
            await interpreter.request("PUT", "/api/interpreters/me/status", {"status": "available"})
            hellos = reconnects_of(counsellor) + reconnects_of(interpreter)
            statuses: list[tuple[str, int, str]] = []
            try:
                await admin.execute(f"ALTER DATABASE {cluster.database} ALLOW_CONNECTIONS false")
                await terminate_backends(admin, cluster.database)
                loop = asyncio.get_running_loop()
                until = loop.time() + 10
                async with aiohttp.ClientSession() as http:
                    for server in (cluster.a, cluster.b):
                        ready = await asyncio.wait_for(http.get(server.url + "/readyz"), 2)
                        assert ready.status == 503
                        checks = (await ready.json())["checks"]
                        assert checks["database"].startswith("unreachable")
                        assert checks["bus"] == "ok"
                while loop.time() < until:
                    for party in (counsellor, interpreter):
                        for method, path, body in api_calls("x" * 12, "y" * 12):
                            try:
                                await party.request(method, path, body)
                                statuses.append((path, 200, ""))
                            except ApiError as exc:
                                statuses.append((path, exc.status, exc.code))
                    with pytest.raises(SocketError) as refused:
                        await interpreter.client.ask({"type": "call.join", "call_id": "z" * 12})
                    assert refused.value.code == "unavailable"
                    await asyncio.sleep(0.5)  # paced, so that the outage sees many rounds
            finally:
                # The language figures skipped meanwhile go out once the database is back.
                figures = asyncio.ensure_future(
                    counsellor.client.wait_for("languages.updated", timeout_s=20)
                )
                await admin.execute(f"ALTER DATABASE {cluster.database} ALLOW_CONNECTIONS true")
                await admin.close()
            assert statuses
            assert {(status, code) for _, status, code in statuses} == {(503, "unavailable")}
            assert counsellor.client.connected
            assert interpreter.client.connected

            # Afterwards, without a restart: a request is offered and accepted.
            async def answers() -> bool:
                try:
                    await counsellor.request("GET", "/api/languages")
                except ApiError:
                    return False
                return True

            await eventually(answers, timeout=15)
            assert (await figures)["languages"]
            offer = await take_offer(counsellor, interpreter, "uk")
            call = await interpreter.request("POST", f"/api/offers/{offer['id']}/accept")
            assert call["call"]["state"] == "connecting"
            await counsellor.request("POST", f"/api/calls/{call['call']['id']}/hangup")
            assert hellos == []
        for server in (cluster.a, cluster.b):

            async def recovered(server: TolkServer = server) -> bool:
                events = events_in(server)[before[server.url] :]
                return any(e.get("event") == "database_recovered" for e in events)

            await eventually(recovered, timeout=10)  # said once it held for a moment
            events = events_in(server)[before[server.url] :]
            names = [e.get("event") for e in events]
            assert names.count("database_unreachable") == 1, server.tail()
            assert names.count("database_recovered") == 1
            assert "unhandled_error" not in names
            assert not [e for e in events if e.get("exception")], server.tail()
