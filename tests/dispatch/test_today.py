"""An interpreter's own figures for today: calls connected since local midnight, time in them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from accounts.models import Role
from tests.factories import make_interpreter


async def today_of(factory: Any, user: Any) -> tuple[int, Any]:
    token = await factory.token(user)
    resp = await factory.client.get(
        "/api/interpreters/me/today", headers={"Authorization": f"Bearer {token}"}
    )
    return resp.status, await resp.json()


class TestToday:
    async def test_counts_calls_since_local_midnight(self, factory, clock):
        """Calls connected since midnight in Berlin count; the evening before does not."""
        # 09:00 UTC is 10:00 in Berlin; local midnight was 23:00 UTC the day before.
        clock.set(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
        counsellor = await factory.user(Role.COUNSELLOR)
        interpreter = await make_interpreter(factory, ["uk"])
        yesterday = datetime(2026, 11, 25, 22, 30, tzinfo=UTC)  # 23:30 local, yesterday
        just_after_midnight = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 00:30 local
        for start, length_s in ((yesterday, 600), (just_after_midnight, 125)):
            await factory.call_between(
                counsellor,
                interpreter,
                connected_at=start,
                ended_at=start + timedelta(seconds=length_s),
            )
        await factory.call_between(
            counsellor, interpreter, connected_at=clock.now() - timedelta(seconds=61.5)
        )
        status, body = await today_of(factory, interpreter)
        assert status == 200, body
        assert body == {"today": {"calls": 2, "talk_s": 125 + 61}}

    async def test_calls_that_never_connected_and_others_calls_do_not_count(self, factory):
        """A call that failed before connecting, and a colleague's call, are not counted."""
        counsellor = await factory.user(Role.COUNSELLOR)
        interpreter = await make_interpreter(factory, ["uk"])
        colleague = await make_interpreter(factory, ["uk"])
        now = factory.clock.now()
        await factory.call_between(counsellor, interpreter, ended_at=now, end_reason="failed")
        await factory.call_between(
            counsellor, colleague, connected_at=now - timedelta(minutes=5), ended_at=now
        )
        status, body = await today_of(factory, interpreter)
        assert (status, body) == (200, {"today": {"calls": 0, "talk_s": 0}})

    async def test_only_interpreters_ask(self, factory, client):
        """A counsellor is refused with 403, nobody logged in with 401."""
        status, body = await today_of(factory, await factory.user(Role.COUNSELLOR))
        assert status == 403, body
        resp = await client.get("/api/interpreters/me/today")
        assert resp.status == 401
