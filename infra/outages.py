"""Outages of the database and the bus: how one is recognised, the error a client gets
while it lasts, and the one warning and one recovery line it is logged with."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from types import TracebackType

import structlog

from infra.errors import TolkError

log = structlog.get_logger(__name__)

RETRY_AFTER_S = 5
"""What a client is told to wait during an outage: about one reconnect of the pool."""

_DRIVERS = ("asyncpg", "sqlalchemy", "aiosqlite")
# SQLSTATE classes that mean the server is gone or not taking us: connection exceptions
# (08), operator intervention (57P: shutdown, terminated backend, starting up) and
# too_many_connections (53300).
_GONE_STATES = ("08", "57P", "53300")


class Unavailable(TolkError):
    code = "unavailable"
    status = 503
    default_message = "A service Tolk needs is out of reach for a moment; please try again."

    def __init__(self, message: str | None = None, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _raised_in_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False


def is_unreachable(exc: BaseException) -> bool:
    """Whether an error from a database session means the server cannot be reached (as
    opposed to a bug or a refused statement). An OSError counts only when the driver
    raised it: a client that went away while an export streams is no outage."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "connection_invalidated", False) is True:
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (
            state.startswith(_GONE_STATES)
            or (state == "55000" and "accepting connections" in str(current))
        ):
            return True
        if isinstance(current, ConnectionRefusedError | socket.gaierror) or (
            isinstance(current, OSError) and _raised_in_driver(current.__traceback__)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


FLAP_S = 2.0
"""A dependency that fails again this soon after it came back is still in the same outage
(connections die one by one at its start): one warning and one recovery line for it."""


class Outages:
    """The up or down state of one dependency, logged once when it goes and once when it
    comes back, however many requests and jobs fail meanwhile."""

    __slots__ = ("_confirm", "_down_since", "_started", "count", "name", "on_recovered")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        """Outages since start-up."""
        self._down_since: float | None = None
        self._started = 0.0
        self._confirm: asyncio.TimerHandle | None = None
        self.on_recovered: list[Callable[[], None]] = []
        """Called (without awaiting) when the dependency answers again after an outage."""

    @property
    def is_up(self) -> bool:
        return self._down_since is None

    def down(self, exc: BaseException | None = None) -> None:
        """A use failed because the dependency is unreachable."""
        if self._down_since is not None:
            return
        if self._confirm is not None:  # back only a moment ago: the same outage goes on
            self._confirm.cancel()
            self._confirm = None
            self._down_since = self._started
            return
        self._down_since = self._started = time.monotonic()
        self.count += 1
        error = type(exc).__name__ if exc is not None else None
        log.warning(f"{self.name}_unreachable", error=error)

    def up(self) -> None:
        """A use succeeded."""
        if self._down_since is None:
            return
        self._down_since = None
        down_s = round(time.monotonic() - self._started, 1)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._recovered(down_s)
        else:
            # Said once it held for FLAP_S, so that a flapping start is one outage.
            self._confirm = loop.call_later(FLAP_S, self._recovered, down_s)
        for listener in self.on_recovered:
            try:
                listener()
            except Exception:
                log.exception(f"{self.name}_recovery_listener_failed")

    def _recovered(self, down_s: float) -> None:
        self._confirm = None
        log.info(f"{self.name}_recovered", down_s=down_s)
