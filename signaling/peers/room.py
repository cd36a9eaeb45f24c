"""A headless participant of a consultation room: joins the room, keeps one peer
connection per other participant (W3C perfect negotiation per pair, politeness as the
server says), routes `signal` by `from`, and reports each connection as `room.media`.
The simulated interpreter uses it in room mode, and tests and load use it as counsellor
or guest."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from infra.tasks import Tasks
from signaling.peers.client import TolkClient
from signaling.peers.media import FrameSink
from signaling.peers.negotiation import Negotiator, Tracks
from signaling.peers.participant import Participant

log = structlog.get_logger(__name__)

REPORTED_STATES = frozenset({"connected", "disconnected", "failed"})


class PairLink:
    """This side's connection to one other participant."""

    def __init__(self, peer_id: str, negotiator: Negotiator) -> None:
        self.peer_id = peer_id
        self.negotiator = negotiator
        self.sink = FrameSink()
        self.connected = asyncio.Event()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pump: asyncio.Task[None] | None = None


class RoomPeer(Participant):
    """One participant of a room, driven by a `TolkClient` whose socket is open."""

    def __init__(
        self,
        client: TolkClient,
        room_id: str,
        tracks: Tracks,
        *,
        relay_only: bool = False,
    ) -> None:
        super().__init__(client, tracks, relay_only=relay_only, log=log.bind(room_id=room_id))
        self.room_id = room_id
        self.self_id = ""
        self.links: dict[str, PairLink] = {}
        self._ice: list[dict[str, Any]] = []
        self._polite: dict[str, bool] = {}
        """Whether this side is polite towards each participant, as the server said."""
        self._heard: dict[str, asyncio.Event] = {}
        self._tasks = Tasks()

    async def join(self) -> None:
        """`room.join` (also after a reconnect); a link to everyone present."""
        joined = await self.client.ask({"type": "room.join", "room_id": self.room_id})
        self.self_id = str(joined["self_id"])
        self._ice = list(joined.get("ice_servers") or [])
        polite_to = set(joined.get("polite_to") or [])
        for participant in joined["participants"]:
            self._learn(participant["id"], participant["id"] in polite_to)
        for participant in joined["participants"]:
            peer_id = participant["id"]
            if peer_id != self.self_id and participant["present"]:
                await self._link(peer_id, peer_id in polite_to)

    async def _link(self, peer_id: str, polite: bool) -> PairLink:
        link = self.links.get(peer_id)
        if link is not None:
            return link

        async def send(data: dict[str, Any]) -> None:
            await self.client.send(
                {"type": "signal", "room_id": self.room_id, "to": peer_id, "data": data}
            )

        negotiator = Negotiator(
            polite=polite,
            ice_servers=self._ice,
            send=send,
            tracks=self._tracks,
            relay_only=self._relay_only,
            on_state=lambda state: self._on_state(peer_id, state),
            on_track=lambda track: self.links[peer_id].sink.add(track),
            name=f"{self.client.username}->{peer_id}",
        )
        link = self.links[peer_id] = PairLink(peer_id, negotiator)
        link.pump = asyncio.get_running_loop().create_task(self._pump(link))
        if not polite:
            await negotiator.offer()
        return link

    async def _pump(self, link: PairLink) -> None:
        # One consumer per pair keeps that peer's signals in order.
        while True:
            data = await link.inbox.get()
            try:
                await link.negotiator.handle(data)
            except Exception:
                self._log.exception("signal_failed", peer=link.peer_id)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "room.updated" and message["room"]["id"] == self.room_id:
            if message["room"]["state"] == "ended":
                self.ended.set()
            return
        if message.get("room_id") != self.room_id:
            return
        if kind == "signal":
            sender = str(message.get("from"))
            link = self.links.get(sender)
            if link is None:
                # Its first offer came before the news of its arrival.
                self._tasks.spawn(self._link_then(sender, message.get("data") or {}))
            else:
                link.inbox.put_nowait(message.get("data") or {})
        elif kind == "room.participant":
            peer_id = message["participant"]["id"]
            self._learn(peer_id, bool(message.get("polite")))
            if message.get("left"):
                self._tasks.spawn(self._drop(peer_id))
            elif message["participant"]["present"] and peer_id not in self.links:
                self._tasks.spawn(self._link(peer_id, bool(message.get("polite"))))

    def _learn(self, peer_id: str, polite: bool) -> None:
        self._polite[peer_id] = polite
        self._heard.setdefault(peer_id, asyncio.Event()).set()

    async def _link_then(self, peer_id: str, data: dict[str, Any]) -> None:
        # Its signal overtook the news of its arrival (they travel on different channels):
        # wait for the news, which says who is polite; a peer that offers first is likely
        # the impolite one, which is what we assume if the news does not come.
        heard = self._heard.setdefault(peer_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await heard.wait()
        link = await self._link(peer_id, self._polite.get(peer_id, True))
        link.inbox.put_nowait(data)

    async def _drop(self, peer_id: str) -> None:
        link = self.links.pop(peer_id, None)
        if link is not None:
            await _close_link(link)

    def _on_state(self, peer_id: str, state: str) -> None:
        link = self.links.get(peer_id)
        if link is not None and state == "connected":
            link.connected.set()
        if state in REPORTED_STATES:
            self._tasks.spawn(self._report(peer_id, state))

    async def _report(self, peer_id: str, state: str) -> None:
        with contextlib.suppress(Exception):
            await self.client.send(
                {"type": "room.media", "room_id": self.room_id, "peer": peer_id, "state": state}
            )

    async def leave(self) -> None:
        """Leave the room for good (`room.leave`), then close every link."""
        with contextlib.suppress(Exception):
            await self.client.ask({"type": "room.leave", "room_id": self.room_id})
        await self.close()

    async def close(self) -> None:
        """Stop media and forget the room."""
        self._detach()
        await self._tasks.cancel()
        links, self.links = list(self.links.values()), {}
        for link in links:
            await _close_link(link)


async def _close_link(link: PairLink) -> None:
    if link.pump is not None:
        link.pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await link.pump
    await link.negotiator.close()
    await link.sink.close()
