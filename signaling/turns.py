"""The hub's fast path for sending: one callback per turn of the loop writes every socket's
queued frames, and a write runs by hand until it would wait, so that a frame costs no
task; a text frame is made and handed to the transport here (`write_text`), without
aiohttp's coroutines. The plain path beside it (`Hub(fast_writes=False)`, setting
`TOLK_FAST_PATHS=false`) gives a socket with frames to send a writer task that awaits each
frame; tests/signaling/test_fast_paths.py holds the two to the same frames in the same order.

Uncompressed frames go to the transport at once, so a write only suspends to wait for a
paused transport to drain; only then does a task take over, resuming the write where it
stopped. What this saves per relayed message is measured by `python -m bench.compare
--arm plain=TOLK_FAST_PATHS=false` (bench/results/compare.md).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Protocol

import structlog
from aiohttp import WSMsgType, web

log = structlog.get_logger(__name__)

_TEXT_FIN = 0x81
_SHORT = struct.Struct("!BB").pack
_MEDIUM = struct.Struct("!BBH").pack
_MEDIUM_MAX = 2**14
"""Longer frames go through aiohttp's writer, which writes their header and body apart."""


_SLICE = 64
"""Sockets written per callback. A frame for every watching socket (the language figures,
to hundreds of sockets each second) is written in slices with the loop's other work
between them: written at once, it held the loop for 10-50 ms, and every request and
signal due meanwhile waited that long."""


class Writable(Protocol):
    """A socket whose queued frames a turn's callback writes out."""

    id: str

    def write_out(self) -> None:
        """Hand the queued frames to the transport without waiting."""


class TurnBatch:
    """Sockets with frames queued in this turn of the loop, written out by one callback."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[Writable] | None = None

    def add(self, conn: Writable) -> None:
        """Write this socket's frames out at the end of the turn."""
        pending = self._pending
        if pending is None:
            pending = self._pending = []
            asyncio.get_running_loop().call_soon(self._write, pending)
        pending.append(conn)

    def _write(self, pending: list[Writable], start: int = 0) -> None:
        if self._pending is pending:
            self._pending = None
        end = min(start + _SLICE, len(pending))
        if end < len(pending):
            # A socket given frames meanwhile is written with the rest of its slice: it is
            # in one batch at a time, so its frames keep their order.
            asyncio.get_running_loop().call_soon(self._write, pending, end)
        for i in range(start, end):
            conn = pending[i]
            try:
                conn.write_out()
            except Exception:
                log.exception("socket_write_failed", socket_id=conn.id)


class _Resume:
    """Awaiting this resumes a coroutine that was started by hand and suspended, so that a
    task can finish what a synchronous caller began."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        coro, value = self._coro, self._yielded
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation and the like: hand it on
                try:
                    value = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = coro.send(sent)
                except StopIteration:
                    return


def step(write: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run a write as far as it goes without waiting: None when it is done (or failed: the
    socket is going), else what a task awaits to finish it."""
    try:
        yielded = write.send(None)
    except StopIteration:
        return None
    except (ConnectionError, RuntimeError):
        return None
    return _Resume(write, yielded)


def write_text(ws: web.WebSocketResponse, payload: bytes) -> Awaitable[None] | None:
    """`step(ws.send_frame(payload, TEXT))` for an uncompressed server frame, with the
    frame made and handed to the transport here, as aiohttp's writer would (its flow
    control included), without the two coroutines it runs per frame."""
    writer = ws._writer
    size = len(payload)
    if (
        writer is None
        or writer.compress
        or writer.use_mask
        or writer._closing
        or size >= _MEDIUM_MAX
        or writer.transport.is_closing()
    ):
        return step(ws.send_frame(payload, WSMsgType.TEXT))
    if size < 126:
        writer.transport.write(_SHORT(_TEXT_FIN, size) + payload)
        written = writer._output_size + 2 + size
    else:
        writer.transport.write(_MEDIUM(_TEXT_FIN, 126, size) + payload)
        written = writer._output_size + 4 + size
    if written <= writer._limit:
        writer._output_size = written
        return None
    writer._output_size = 0
    protocol = writer.protocol
    return protocol._drain_helper() if protocol._paused else None
