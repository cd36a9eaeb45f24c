"""What a call's and a room's headless participant share: the open client that drives it,
the tracks it sends, and being told every message and every reconnect until it closes."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Any

from structlog.typing import FilteringBoundLogger

from signaling.peers.client import TolkClient
from signaling.peers.negotiation import Tracks


class Participant(ABC):
    """Hears the client's messages (`_on_message`) and joins again after each reconnect
    (`join`) from its creation until `_detach`."""

    def __init__(
        self,
        client: TolkClient,
        tracks: Tracks,
        *,
        relay_only: bool,
        log: FilteringBoundLogger,
    ) -> None:
        self.client = client
        self.ended = asyncio.Event()
        self._tracks = tracks
        self._relay_only = relay_only
        self._log = log.bind(username=client.username)
        client.listeners.append(self._on_message)
        client.on_connected.append(self.join)

    @abstractmethod
    async def join(self) -> None:
        """Join the call or room (also after a reconnect)."""

    @abstractmethod
    def _on_message(self, message: dict[str, Any]) -> None: ...

    def _detach(self) -> None:
        """Stop hearing the client: no more messages, no rejoin after a reconnect."""
        with contextlib.suppress(ValueError):
            self.client.listeners.remove(self._on_message)
        with contextlib.suppress(ValueError):
            self.client.on_connected.remove(self.join)
