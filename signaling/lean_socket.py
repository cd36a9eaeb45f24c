"""A socket that leaves aiohttp's request handling once it is open: the fast path for memory.

aiohttp runs a socket as a request that never ends: for its whole life the request's two
tasks and their frames wait, holding the parsed upgrade request with its headers, and the
session waits in a task of its own for each frame. Here the session is greeted where
aiohttp ends the response (`LeanResponse.write_eof`, after the middlewares have returned),
then the connection's bytes go to an `Inbox` of the socket's own, which parses them with
aiohttp's WebSocket reader and hands each frame to the session's callback as it arrives;
aiohttp's request then ends (its access log written once, for the upgrade) without closing
the connection, and lets go of the request. An idle socket holds no task and no frame: a
frame is handled as it arrives (a relayed signal is done at once), and a task is made only
when a handling waits, which then handles the frames that came meanwhile (past `_HOLD_MAX`
waiting, also while it is being greeted, the connection is read no more until they are
handled). A close frame, an error, the end of the connection, a close by the
server, or a frame whose handling fails ends the callbacks: what is left is read by the
plain path's loop, as aiohttp reads it (the close handshake, the close codes), and a
failure is reported there as the plain path reports it. bench/results/scale.md has what this saves.

The plain path beside it (setting `TOLK_FAST_PATHS=false`) is the handler awaiting the
session, which reads every frame with `receive()`; tests/signaling/test_fast_paths.py holds
the two to the same conversation.

`release_http` lets go, once a connection is a socket, of what aiohttp keeps for reading
further HTTP requests on it (which never come: after the upgrade its bytes are WebSocket
frames): the HTTP parser and the queue of parsed requests.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import _EXC_SENTINEL, DEFAULT_CHUNK_SIZE

DATA_FRAMES = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG})
"""Frames a session handles; any other ends it (a close, an error, the end of the stream)."""
_HOLD_MAX = 16
"""Frames held behind one being handled before the socket stops reading, as aiohttp's own
queue stops reading when it is full."""


class Session(Protocol):
    """Where a socket's frames go (signaling/socket.py)."""

    def frame(self, frame: Any) -> Coroutine[Any, Any, None] | None:
        """Handle a data frame; what it returns is awaited before the next one is handled."""

    def ended(self, busy: asyncio.Task[None] | None, context: contextvars.Context) -> None:
        """No frame comes here any more: `busy` is the handling still running (if any),
        `context` the socket's."""


async def _failing(exc: Exception) -> None:
    """A handling that failed before it could wait, as a task's failure."""
    raise exc


_NO_REQUESTS: deque[Any] = deque(maxlen=0)
"""Stands in for every upgraded connection's queue of parsed requests: it stays empty."""


class Inbox(WebSocketDataQueue, asyncio.Protocol):
    """A socket's frames, handed to its session as they are parsed. While the session is
    being greeted they are held; once it ended (and on the plain path's terms) they queue
    in aiohttp's queue, which `receive()` reads. Once listening it is also the connection's
    protocol, feeding aiohttp's WebSocket reader."""

    __slots__ = ("_context", "_held", "_parser", "_running", "_session")

    def __init__(self, protocol: BaseProtocol, limit: int, *, loop: asyncio.AbstractEventLoop):
        super().__init__(protocol, limit, loop=loop)
        self._parser: WebSocketReader | None = None
        self._context: contextvars.Context | None = None
        self._session: Session | None = None
        # Opening: a list (what arrived before `listen`); listening: None or the frames
        # waiting behind the one being handled; ended: None (and no `_session`).
        self._held: list[Any] | None = []
        self._running: asyncio.Task[None] | None = None

    def listen(self, session: Session, transport: asyncio.BaseTransport) -> None:
        """From now on hand each frame to `session` in the current context, reading the
        connection's bytes here; `session.ended` is called once no more frames will come."""
        self._context = context = contextvars.copy_context()
        handler: Any = self._protocol
        self._parser = handler._payload_parser
        # aiohttp's request ends when the response does; with its connection force-closed
        # already (as it believes), it leaves the transport open, and reads it no more.
        handler._force_close = True
        if (task := handler._task_handler) is not None:
            # Its finished task would stay with the connection, kept for a next request.
            task.add_done_callback(lambda _: setattr(handler, "_task_handler", None))
        if not transport.is_closing():
            transport.set_protocol(self)
        if self._held is None:  # it ended while being greeted
            session.ended(None, context)
            return
        self._session = session
        if held := self._held:
            self._held = held[1:] or None
            self._take(held[0])
        else:
            self._held = None

    def stop(self) -> None:
        """Hand no more frames to the session: what is held, and what comes, queues for
        `receive()`; the session's end is called (once)."""
        held, self._held = self._held, None
        session, self._session = self._session, None
        for frame in held or ():
            super().feed_data(frame, 0)
        if session is not None:
            assert self._context is not None
            session.ended(self._running, self._context)

    # What aiohttp's WebSocket reader calls.

    def feed_data(self, data: Any, size: int) -> None:
        held = self._held
        if self._session is None and held is None:
            super().feed_data(data, size)
        elif self._session is None or self._running is not None or held:
            if held is None:
                held = self._held = []
            held.append(data)
            # Also while being greeted (the database hooks may be slow): a flood is held
            # no further than a read or so beyond the limit.
            if len(held) >= _HOLD_MAX and not self._protocol._reading_paused:
                self._protocol.pause_reading()
        else:
            self._take(data)

    def feed_eof(self) -> None:
        self.stop()
        super().feed_eof()

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        self.stop()
        super().set_exception(exc, exc_cause)

    def _take(self, frame: Any) -> None:
        """Handle a frame (and then those held behind it) at once, in the socket's context;
        from the first whose handling waits on, in a task."""
        context = self._context
        assert context is not None
        try:
            step = context.run(self._handle, frame)
        except Exception as exc:  # reported as a failing handling is, by the session's end
            step = _failing(exc)
        if step is not None:
            # Handlers that wait need a task (timeouts, locks and the database's driver ask
            # for the current task); one is made then, not kept: an idle socket holds none.
            self._running = asyncio.get_running_loop().create_task(
                self._work(step), context=context
            )
        elif not self._held:
            self._held = None

    def _handle(self, frame: Any) -> Awaitable[None] | None:
        """Handle a frame, then those held behind it, while each is done at once; the
        handling of the first that is not, to await before the rest."""
        while frame is not None:
            if frame.type not in DATA_FRAMES:
                self._held = [frame, *(self._held or ())]
                self.stop()
                return None
            session = self._session
            if session is None:
                return None
            if (step := session.frame(frame)) is not None:
                return step
            frame = self._next_held() if self._held else None
        return None

    def _next_held(self) -> Any:
        """The next frame held behind those handled, if the session still takes frames."""
        held = self._held
        if not held or self._session is None:
            return None
        frame = held.pop(0)
        if len(held) <= _HOLD_MAX // 2 and self._protocol._reading_paused:
            self._protocol.resume_reading()
        return frame

    async def _work(self, step: Awaitable[None]) -> None:
        pending: Awaitable[None] | None = step
        try:
            while pending is not None:
                await pending
                pending = self._handle(self._next_held())
        except BaseException:
            # The rest of the session takes over, as the plain path's loop would: it reports
            # what went wrong (this task is its `busy`), and reads what is held and comes.
            self.stop()
            raise
        finally:
            self._running = None
            if not self._held:
                self._held = None

    # The connection's protocol, once listening.

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is not None:
            parser.feed_data(data)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        # aiohttp's protocol lets its server forget the connection, and ends the reader.
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()


class LeanResponse(web.WebSocketResponse):
    """A WebSocketResponse that, when `lean`, runs `session` as its end and hands its frames
    to callbacks through an `Inbox` (`listen`)."""

    session: Coroutine[Any, Any, None] | None = None
    _inbox: Inbox | None = None
    _sent_code: int | None = None
    _transport: asyncio.BaseTransport | None = None

    def __init__(self, *, lean: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lean = lean

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        handler: Any = request.protocol
        self._transport = handler.transport
        if not self._lean:
            super()._post_start(request, protocol, writer)
            return
        # Bytes that came right behind the upgrade request go to the reader kept, not to
        # the one aiohttp makes first.
        tail, handler._message_tail = handler._message_tail, b""
        super()._post_start(request, protocol, writer)
        assert self._loop is not None
        self._inbox = inbox = Inbox(handler, DEFAULT_CHUNK_SIZE, loop=self._loop)
        self._reader = inbox
        self._parser = parser = WebSocketReader(
            inbox, self._max_msg_size, compress=bool(self._compress), decode_text=self._decode_text
        )
        handler._payload_parser = parser
        if tail:
            parser.feed_data(tail)

    @property
    def close_code(self) -> int | None:
        """The code sent when the server closed first (aiohttp's would be the client's
        answer, or 1000 once a `receive()` waiting meanwhile returns), else the one read."""
        return self._sent_code if self._sent_code is not None else self._close_code

    def listen(self, session: Session) -> None:
        """Hand the socket's frames to `session` from now on (see `Inbox.listen`), and let
        go of the upgrade request."""
        assert self._inbox is not None
        assert self._transport is not None
        self._inbox.listen(session, self._transport)
        self._req = None

    def write_eof(self, data: bytes = b"") -> Coroutine[Any, Any, None]:
        # The session itself is the awaitable (one frame less); it ends by closing the
        # socket, as the end of a WebSocketResponse does, or by handing it to callbacks.
        session, self.session = self.session, None
        return session if session is not None else super().write_eof()

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Close (aiohttp's close handshake); a lean socket's callbacks end first."""
        if self._close_code is None and not self.closed:
            self._sent_code = code
        if self._inbox is not None:
            self._inbox.stop()
        return await super().close(code=code, message=message, drain=drain)

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'closed' if self.closed else 'open'}>"


def release_http(request: web.Request) -> None:
    """After the upgrade: drop the connection's HTTP parser and request queue."""
    protocol: Any = request.protocol
    # aiohttp reads them only before an upgrade; every use after one is guarded by a check
    # that the connection was upgraded or the parser is gone (as after connection_lost).
    if getattr(protocol, "_upgraded", False) and getattr(protocol, "_payload_parser", None):
        protocol._parser = None
        protocol._messages = _NO_REQUESTS
