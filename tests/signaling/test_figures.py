"""The live language figures go to the watching sockets a group at a time, spread over a
short time: every watching socket gets each publication once, a socket that stopped
watching meanwhile does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from accounts.models import Role
from infra.appkeys import BUS
from infra.bus import LANGUAGES_CHANNEL, LocalBus
from infra.clock import SystemClock
from signaling.figures import GROUP, FigureWatchers, Pacing
from signaling.hub import Connection
from tests.waiting import next_message, until


@dataclass
class _Identity:
    role: Role = Role.COUNSELLOR


@dataclass(eq=False)
class _Page:
    """A watching socket as the figures see it: something frames are sent to."""

    identity: _Identity = field(default_factory=_Identity)
    frames: list[bytes] = field(default_factory=list)

    def send_raw(self, payload: bytes) -> None:
        self.frames.append(payload)


async def _never_read() -> bytes:
    raise AssertionError("a publication needs no read")


async def test_a_publication_goes_out_a_group_at_a_time_and_reaches_every_watcher():
    bus = LocalBus()
    watchers = FigureWatchers(
        bus, _never_read, SystemClock(), pacing=Pacing(group=3, spread_s=0.05)
    )
    await watchers.start()
    pages = [_Page() for _ in range(8)]
    for page in pages:
        await watchers.attached(cast(Connection, page))
    await bus.publish(LANGUAGES_CHANNEL, b"figures")
    first = [page for page in pages if page.frames]
    assert len(first) == 3
    gone = next(page for page in pages if not page.frames)
    await watchers.watch(cast(Connection, gone), False)
    await until(lambda: sum(len(page.frames) for page in pages) == 7)
    assert all(page.frames == [b"figures"] for page in pages if page is not gone)
    assert gone.frames == []
    await watchers.close()


async def test_pages_beyond_one_group_all_get_the_figures(client, factory):
    """More counsellors' pages than one group watch: each gets the publication."""
    user = await factory.user()
    token = await factory.token(user)
    pages = [await factory.socket(token) for _ in range(GROUP + 6)]
    await client.app[BUS].publish(LANGUAGES_CHANNEL, b'{"type":"languages.updated","languages":[]}')
    for ws in pages:
        assert (await next_message(ws, "languages.updated", timeout=10))["languages"] == []
    for ws in pages:
        await ws.close()
