"""The hub's turn batch (signaling/turns.py): frames for many sockets are written in
slices, with the loop's other work between them, each socket once and in queue order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from infra.appkeys import BUS
from infra.bus import publish_json, user_channel
from signaling.turns import TurnBatch
from tests.waiting import until


class _Socket:
    """A socket as the batch sees it: something whose queued frames it writes out."""

    def __init__(self, number: int, written: list[str]) -> None:
        self.id = f"s{number}"
        self._written = written

    def write_out(self) -> None:
        self._written.append(self.id)


async def test_a_batch_for_many_sockets_lets_other_work_run_between_its_slices():
    """200 sockets with frames: work that became due after them runs before the last of
    them is written, instead of waiting for all 200; each is written once, in order."""
    written: list[str] = []
    batch = TurnBatch()
    sockets = [_Socket(n, written) for n in range(200)]
    for socket in sockets:
        batch.add(socket)
    seen: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: seen.append(len(written)))
    await until(lambda: len(written) == 200)
    assert written == [s.id for s in sockets]
    assert 0 < seen[0] < 200


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
def settings(request: pytest.FixtureRequest, settings: Any) -> Any:
    return settings.model_copy(update={"fast_paths": request.param})


async def test_news_to_many_sockets_arrives_whole_and_in_order_on_each(client, factory):
    """Three news in a row to a user with 70 open tabs (more than one slice): every tab
    gets all three, in the order sent."""
    user = await factory.user()
    token = await factory.token(user)
    tabs = [await factory.socket(token) for _ in range(70)]
    for n in range(3):
        await publish_json(client.app[BUS], user_channel(user.id), {"type": "pong", "ref": f"n{n}"})
    for ws in tabs:
        refs: list[str] = []
        while len(refs) < 3:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "pong":
                refs.append(msg["ref"])
        assert refs == ["n0", "n1", "n2"]
    for ws in tabs:
        await ws.close()
