"""The call lifecycle: connected when both report, hangup once, rejoin, lost and failed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from accounts.models import Role
from calls.ending import CALL_ENDING
from calls.hooks import CALL_ENDED_HOOKS
from calls.models import Call, CallPresence
from infra.jsonio import format_time
from interpreters.models import Interpreter
from signaling.rooms import ROOMS
from tests.calls.conftest import receive_type, wait_until
from tests.calls.test_rooms import sockets_in_call


async def stored(factory: Any, call_id: str) -> Call:
    async with factory.db.read() as session:
        call = await session.get(Call, call_id)
        assert call is not None
        return call


async def interpreter_row(factory: Any, user_id: str) -> Interpreter:
    async with factory.db.read() as session:
        row = await session.get(Interpreter, user_id)
        assert row is not None
        return row


async def connect(factory: Any, call: Any) -> tuple[Any, Any]:
    """Both participants join and report connected; returns their sockets."""
    counsellor, interpreter = await sockets_in_call(factory, call)
    for ws in (counsellor, interpreter):
        await ws.send_json({"type": "call.media", "call_id": call.id, "state": "connected"})
    for ws in (counsellor, interpreter):
        while (await receive_type(ws, "call.updated"))["call"]["state"] != "connected":
            pass
    return counsellor, interpreter


async def no_sockets_in(factory: Any, call_id: str) -> None:
    """Wait until the server has recorded every socket of the call as gone."""

    async def empty() -> bool:
        async with factory.db.read() as session:
            rows = await session.exec(select(CallPresence).where(CallPresence.call_id == call_id))
            return not rows.all()

    await wait_until(empty)


def z(moment: datetime) -> str:
    return format_time(moment)


class TestConnected:
    async def test_call_connects_only_after_both_sides_report(self, client, factory, clock):
        """One side's `connected` is not enough; the second one starts billing."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        await counsellor.send_json({"type": "call.media", "call_id": call.id, "state": "connected"})
        await counsellor.send_json({"type": "ping", "ref": "p"})
        await receive_type(counsellor, "pong")
        assert (await stored(factory, call.id)).state == "connecting"
        clock.advance(2)
        await interpreter.send_json(
            {"type": "call.media", "call_id": call.id, "state": "connected"}
        )
        for ws in (counsellor, interpreter):
            update = await receive_type(ws, "call.updated")
            assert update["call"]["state"] == "connected"
            assert update["call"]["connected_at"] == z(clock.now())
        assert (await stored(factory, call.id)).connected_at == clock.now()
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_a_failed_report_does_not_connect(self, factory):
        """`failed` from one side and `connected` from the other leaves the call connecting."""
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        await counsellor.send_json({"type": "call.media", "call_id": call.id, "state": "failed"})
        await interpreter.send_json(
            {"type": "call.media", "call_id": call.id, "state": "connected"}
        )
        await interpreter.send_json({"type": "ping"})
        await receive_type(interpreter, "pong")
        assert (await stored(factory, call.id)).state == "connecting"
        for ws in (counsellor, interpreter):
            await ws.close()


class TestHangup:
    async def test_hangup_ends_once_and_is_idempotent(self, client, factory, clock):
        """HTTP hangup twice and a socket hangup: one ending, hooks run once, same call back."""
        ran: list[str] = []

        async def hook(session: Any, call: Call) -> None:
            ran.append(call.id)

        client.app[CALL_ENDED_HOOKS].append(hook)
        call = await factory.call()
        counsellor, interpreter = await connect(factory, call)
        clock.advance(125)
        user = await _user(factory, call.counsellor_id)
        await factory.login(user)
        first = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
        assert first.status == 200
        body = (await first.json())["call"]
        assert body["state"] == "ended"
        assert body["end_reason"] == "hangup"
        assert body["ended_at"] == z(clock.now())
        assert body["duration_s"] == 125
        for ws in (counsellor, interpreter):
            assert (await receive_type(ws, "call.updated"))["call"]["state"] == "ended"
        clock.advance(5)
        again = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
        assert again.status == 200
        assert (await again.json())["call"] == body
        await interpreter.send_json({"type": "call.hangup", "call_id": call.id, "ref": "h"})
        reply = await receive_type(interpreter, "call.updated")
        assert (reply["ref"], reply["call"]) == ("h", body)
        assert ran == [call.id]
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_racing_hangups_run_the_hooks_once(self, client, factory):
        """Both participants hanging up at the same moment end the call once."""
        ran: list[str] = []

        async def hook(session: Any, call: Call) -> None:
            ran.append(call.id)

        client.app[CALL_ENDED_HOOKS].append(hook)
        call = await factory.call(state="connected")
        counsellor, interpreter = await sockets_in_call(factory, call)
        for ws in (counsellor, interpreter):
            await ws.send_json({"type": "call.hangup", "call_id": call.id})
        await receive_type(counsellor, "call.updated")
        await receive_type(interpreter, "call.updated")
        await interpreter.send_json({"type": "ping"})
        await receive_type(interpreter, "pong")
        await counsellor.send_json({"type": "ping"})
        await receive_type(counsellor, "pong")
        assert ran == [call.id]
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_interpreter_goes_to_wrap_up(self, client, factory, clock, settings):
        """After the hangup the interpreter is in wrap-up until now + wrap_up_s."""
        call = await factory.call(state="connected")
        user = await _user(factory, call.interpreter_id)
        await factory.login(user)
        resp = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
        assert resp.status == 200
        row = await interpreter_row(factory, call.interpreter_id)
        assert row.status == "wrap_up"
        assert row.wrap_up_until == clock.now() + timedelta(seconds=settings.wrap_up_s)

    async def test_only_participants_may_see_or_hang_up(self, client, factory):
        """A third user gets 403 on GET and hangup; an admin may look; the call lives on."""
        call = await factory.call(state="connected")
        await factory.login(await factory.user(Role.COUNSELLOR))
        assert (await client.get(f"/api/calls/{call.id}")).status == 403
        hangup = await client.post(f"/api/calls/{call.id}/hangup", headers=factory.headers())
        assert hangup.status == 403
        assert (await hangup.json())["error"]["code"] == "forbidden"
        assert (await client.get("/api/calls/nope")).status == 404
        await factory.login(await factory.user(Role.ADMIN))
        resp = await client.get(f"/api/calls/{call.id}")
        assert resp.status == 200
        assert (await resp.json())["call"]["state"] == "connected"
        await factory.login(await _user(factory, call.counsellor_id))
        resp = await client.get(f"/api/calls/{call.id}")
        assert (await resp.json())["call"]["counsellor"]["id"] == call.counsellor_id

    async def test_counsellor_sees_who_interprets_and_for_which_agency(self, client, factory):
        """The call names the interpreter and the agency they work for."""
        interpreter = await factory.interpreter(
            display_name="Olena K.", agency="Sprachmittler e.V."
        )
        call = await factory.call(interpreter=interpreter)
        await factory.login(await _user(factory, call.counsellor_id))
        view = (await (await client.get(f"/api/calls/{call.id}")).json())["call"]
        assert view["interpreter"] == {
            "id": interpreter.id,
            "display_name": "Olena K.",
            "agency": "Sprachmittler e.V.",
            "number": None,
        }


class TestSweep:
    async def test_rejoin_within_grace_keeps_the_call(self, client, factory, clock):
        """Both drop; one comes back after 50 s; the sweep leaves the call alone."""
        call = await factory.call()
        counsellor, interpreter = await connect(factory, call)
        for ws in (counsellor, interpreter):
            await ws.close()
        await no_sockets_in(factory, call.id)
        clock.advance(50)
        interpreter = await factory.socket(await factory.token_for(call.interpreter_id))
        await interpreter.send_json({"type": "call.join", "call_id": call.id})
        assert (await receive_type(interpreter, "call.joined"))["peer_present"] is False
        clock.advance(40)
        await client.app[ROOMS].heartbeat()
        assert await client.app[CALL_ENDING].sweep() == []
        clock.advance(40)
        await client.app[ROOMS].heartbeat()
        assert await client.app[CALL_ENDING].sweep() == []
        assert (await stored(factory, call.id)).state == "connected"
        await interpreter.close()

    async def test_call_is_lost_after_the_grace_with_the_last_seen_time(
        self, client, factory, clock, settings
    ):
        """Nobody back within the grace: ended `lost` at the moment the last one was seen."""
        call = await factory.call()
        counsellor, interpreter = await connect(factory, call)
        connected_at = clock.now()
        clock.advance(300)
        await client.app[ROOMS].heartbeat()
        await counsellor.close()
        await receive_type(interpreter, "peer")
        clock.advance(20)
        await interpreter.close()
        await no_sockets_in(factory, call.id)
        last_seen = clock.now()
        clock.advance(settings.call_rejoin_grace_s - 1)
        assert await client.app[CALL_ENDING].sweep() == []
        clock.advance(1)
        (ended,) = await client.app[CALL_ENDING].sweep()
        assert ended.end_reason == "lost"
        assert ended.ended_at == last_seen
        assert ended.duration_s == int((last_seen - connected_at).total_seconds())
        assert (await interpreter_row(factory, call.interpreter_id)).status == "wrap_up"
        assert await client.app[CALL_ENDING].sweep() == []

    async def test_call_that_never_connects_fails_and_is_not_billable(
        self, client, factory, clock, settings
    ):
        """After the connect timeout a connecting call ends `failed` with no connected_at."""
        ran: list[str] = []

        async def hook(session: Any, call: Call) -> None:
            ran.append(call.end_reason or "")

        client.app[CALL_ENDED_HOOKS].append(hook)
        call = await factory.call()
        counsellor, interpreter = await sockets_in_call(factory, call)
        clock.advance(settings.call_connect_timeout_s - 1)
        assert await client.app[CALL_ENDING].sweep() == []
        clock.advance(1)
        (ended,) = await client.app[CALL_ENDING].sweep()
        assert (ended.state, ended.end_reason) == ("ended", "failed")
        assert ended.connected_at is None
        assert ended.duration_s is None
        assert ran == ["failed"]
        for ws in (counsellor, interpreter):
            update = await receive_type(ws, "call.updated")
            assert update["call"]["end_reason"] == "failed"
        # The room is closed: signals are refused now.
        await counsellor.send_json(
            {"type": "signal", "call_id": call.id, "data": {"candidate": None}}
        )
        assert (await receive_type(counsellor, "error"))["code"] == "forbidden"
        assert (await interpreter_row(factory, call.interpreter_id)).status == "wrap_up"
        for ws in (counsellor, interpreter):
            await ws.close()

    async def test_sweeps_racing_end_the_call_once(self, client, factory, clock, settings):
        """Two sweeps at once (two instances) end a due call once."""
        await factory.call()
        clock.advance(settings.call_connect_timeout_s)
        results = await asyncio.gather(
            client.app[CALL_ENDING].sweep(), client.app[CALL_ENDING].sweep()
        )
        assert sorted(len(r) for r in results) == [0, 1]


async def _user(factory: Any, user_id: str) -> Any:
    from accounts.models import User

    async with factory.db.read() as session:
        return await session.get(User, user_id)
