"""The live language figures' fan-out: sent when they change, not when they stay the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from infra.appkeys import BUS, CLOCK, DATABASE
from infra.bus import LANGUAGES_CHANNEL
from infra.jsonio import loads
from interpreters.keys import QUEUE_FIGURES
from interpreters.live import LanguageBroadcaster
from tests.factories import Factory, make_interpreter
from tests.waiting import until


@pytest.fixture
async def heard(client: TestClient) -> AsyncIterator[list[bytes]]:
    """What a watching socket would get: every message on the figures channel."""
    payloads: list[bytes] = []
    sub = await client.app[BUS].subscribe(
        LANGUAGES_CHANNEL, lambda _channel, payload: payloads.append(payload)
    )
    yield payloads
    await sub.cancel()


@pytest.fixture
async def broadcaster(client: TestClient) -> AsyncIterator[LanguageBroadcaster]:
    app = client.app
    live = LanguageBroadcaster(
        app[DATABASE],
        app[BUS],
        lambda: app[QUEUE_FIGURES],
        app[CLOCK],
        delay_s=0.0,
        interval_s=0.01,
    )
    await live.start()
    yield live
    await live.close()


async def published(
    client: TestClient, live: LanguageBroadcaster, heard: list[bytes], count: int
) -> None:
    """Let a poke run its course, then check how many figures went out in all."""
    await live.settled()
    # A marker published after it arrives after whatever the poke published (one channel,
    # in order), and after the broadcaster heard that too.
    marker = b'{"type":"test.marker"}'
    await client.app[BUS].publish(LANGUAGES_CHANNEL, marker)
    await until(lambda: marker in heard)
    heard.remove(marker)
    assert len(heard) == count


async def test_unchanged_figures_are_not_sent_again(
    factory: Factory, broadcaster: LanguageBroadcaster, heard: list[bytes]
):
    """A second poke with the same figures sends nothing; a change sends once."""
    await make_interpreter(factory, ["ti"], status="available")
    broadcaster.poke()
    await published(factory.client, broadcaster, heard, 1)
    broadcaster.poke()
    await published(factory.client, broadcaster, heard, 1)

    await make_interpreter(factory, ["ti"], status="available")
    broadcaster.poke()
    await published(factory.client, broadcaster, heard, 2)
    figures = {f["tag"]: f for f in loads(heard[-1])["languages"]}
    assert figures["ti"]["available"] == 2
    broadcaster.poke()
    await published(factory.client, broadcaster, heard, 2)


async def test_figures_are_sent_again_after_a_gap(
    factory: Factory, broadcaster: LanguageBroadcaster, heard: list[bytes]
):
    """After a gap in the bus the same figures go out again: sockets may have missed them."""
    await make_interpreter(factory, ["ti"], status="available")
    broadcaster.poke()
    await published(factory.client, broadcaster, heard, 1)
    broadcaster.resend()
    await published(factory.client, broadcaster, heard, 2)
    assert heard[0] == heard[1]
