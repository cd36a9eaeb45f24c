"""A real `tolk serve` killed with SIGKILL in the middle of a call, and started again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calls.models import Call
from infra.clock import ManualClock
from infra.db import Database, make_engine
from tests.factories import Factory
from tests.integration.server import Backend, TolkServer
from tolk import schema

HEARTBEAT_S = 2.0


class Peer:
    """One participant's socket, read continuously (so pings are answered)."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, token: str) -> Peer:
        http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        ws = await http.ws_connect(url + "/ws")
        return cls(http, ws)

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await self.inbox.put(msg.json())

    async def send(self, **message: Any) -> None:
        await self.ws.send_json(message)

    async def next(self, kind: str, within: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                msg = await self.inbox.get()
                if msg["type"] == kind:
                    return msg

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.ws.close()
        await self.http.close()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[TolkServer, Any, str, str, Database]]:
    """A server (not started yet) on an SQLite file, and a call between two users in it."""
    data = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/tolk.db")
    server = TolkServer(
        tmp_path,
        data,
        TOLK_WS_HEARTBEAT_S=str(HEARTBEAT_S),
        TOLK_SWEEP_INTERVAL_S="0.5",
        TOLK_CALL_REJOIN_GRACE_S="3",
    )
    await schema.upgrade(data.database_url)
    db = Database(make_engine(data.database_url))
    factory = Factory(None, db, ManualClock(datetime.now(UTC)))  # type: ignore[arg-type]
    call = await factory.call()
    tokens = (
        await factory.token_for(call.counsellor_id),
        await factory.token_for(call.interpreter_id),
    )
    try:
        yield server, call, *tokens, db
    finally:
        server.stop()
        await db.close()


async def join_both(server: TolkServer, call: Any, tokens: tuple[str, str]) -> list[Peer]:
    peers = [await Peer.connect(server.url, t) for t in tokens]
    for peer in peers:
        await peer.next("hello")
        await peer.send(type="call.join", call_id=call.id)
        await peer.next("call.joined")
    return peers


async def connect_both(server: TolkServer, call: Any, tokens: tuple[str, str]) -> list[Peer]:
    """Both participants join and report their media connected; the call is connected."""
    peers = await join_both(server, call, tokens)
    for peer in peers:
        await peer.send(type="call.media", call_id=call.id, state="connected")
    for peer in peers:
        while (await peer.next("call.updated"))["call"]["state"] != "connected":
            pass
    return peers


class TestServerKilled:
    async def test_call_survives_a_sigkill_and_bills_the_real_duration(self, setup):
        """Kill -9 mid-call, restart, both rejoin, hang up: one call, the real duration."""
        server, call, counsellor_token, interpreter_token, db = setup
        await server.start()
        peers = await connect_both(server, call, (counsellor_token, interpreter_token))
        started = time.monotonic()
        await asyncio.sleep(2.5)  # the call goes on for a while (not a synchronisation)
        server.kill()
        for peer in peers:
            await peer.close()
        await server.start()
        peers = await join_both(server, call, (counsellor_token, interpreter_token))
        await asyncio.sleep(1.0)  # the call goes on after the restart
        await peers[0].send(type="call.hangup", call_id=call.id)
        ended = (await peers[0].next("call.updated"))["call"]
        real_s = time.monotonic() - started
        assert ended["id"] == call.id
        assert ended["end_reason"] == "hangup"
        assert abs(ended["duration_s"] - real_s) <= HEARTBEAT_S
        async with db.read() as session:
            from sqlmodel import select

            rows = (await session.exec(select(Call))).all()
        assert [r.id for r in rows] == [call.id]
        for peer in peers:
            await peer.close()

    async def test_both_peers_vanish_and_the_call_ends_lost_at_the_last_seen_time(self, setup):
        """Kill -9 and nobody comes back: the restarted server ends the call `lost`, with
        ended_at no earlier than one heartbeat before the kill."""
        server, call, counsellor_token, interpreter_token, db = setup
        await server.start()
        peers = await connect_both(server, call, (counsellor_token, interpreter_token))
        await asyncio.sleep(2.5)  # the call goes on for a while (not a synchronisation)
        server.kill()
        killed_at = datetime.now(UTC)
        for peer in peers:
            await peer.close()
        await server.start()
        deadline = time.monotonic() + 20
        while True:
            async with db.read() as session:
                row = await session.get(Call, call.id)
            assert row is not None
            if row.state == "ended":
                break
            assert time.monotonic() < deadline, "the call was not ended"
            await asyncio.sleep(0.1)
        assert row.end_reason == "lost"
        assert row.ended_at is not None
        lag = (killed_at - row.ended_at).total_seconds()
        assert 0 <= lag <= HEARTBEAT_S
