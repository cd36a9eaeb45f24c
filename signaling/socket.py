"""The `/ws` endpoint: authenticate the upgrade, say hello, then parse each frame once and
hand it to the handler for its type."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Context
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web
from pydantic import ValidationError

from accounts.access import INTERPRETS, as_interpreter, identify, identify_guest, origin_allowed
from accounts.models import Role
from accounts.views import Identity, UserView
from infra import jsonio
from infra.appkeys import CLOCK, SETTINGS
from infra.errors import TolkError
from infra.http import error_body, json_response, nul_character_at, validation_problems
from infra.metrics import METRICS
from signaling.consultations import CONSULTATION_HANDLERS
from signaling.figures import handle_watch
from signaling.hub import CLOSE_RATE_LIMITED, Connection, Hub
from signaling.keys import HUB
from signaling.lean_socket import DATA_FRAMES, LeanResponse, release_http
from signaling.presence import handle_presence
from signaling.relay_fast import REF_MAX, plain_signal
from signaling.rooms import FAST_RELAY, ROOM_HANDLERS, FastRelay
from wire.client import CLIENT_MESSAGE, CLIENT_MESSAGE_TYPES, Ping
from wire.rooms import GuestView
from wire.server import ErrorMessage, Hello, Pong

log = structlog.get_logger(__name__)

MessageHandler = Callable[[web.Application, Connection, Any], Awaitable[None]]
_RATE_STRIKES_BEFORE_CLOSE = 50
_LINGER_S = 5.0
_QUIET_S = 0.25
"""After a refused frame: how long the client must send nothing before the server closes."""


async def _ping(app: web.Application, conn: Connection, msg: Ping) -> None:
    conn.send(Pong(ref=msg.ref))


GUEST_MESSAGES = frozenset({"ping", "room.join", "signal", "room.media", "room.leave"})
"""All a guest's socket may send; anything else is `forbidden`."""
TERMINAL_MESSAGES = frozenset(
    {"ping", "call.join", "signal", "call.media", "call.hangup", "languages.watch"}
)
"""All a terminal's socket may send: its own calls (`signal` reaches only a call's other
side, whose membership the call's room checks), and whether it wants the figures."""
LIMITED: dict[Role, tuple[frozenset[str], str]] = {
    Role.GUEST: (GUEST_MESSAGES, "A guest may only take part in their consultation room."),
    Role.TERMINAL: (TERMINAL_MESSAGES, "A terminal may only take part in its own calls."),
}
"""Roles whose sockets may send only some message types, and what the others are told."""
_MAY_NOT_SIGNAL = frozenset(
    role for role, (allowed, _) in LIMITED.items() if "signal" not in allowed
)
"""Roles the relay's fast path leaves to the checks below it (none today)."""

HANDLERS: dict[str, MessageHandler] = {
    "ping": _ping,
    "presence": handle_presence,
    "languages.watch": handle_watch,
    **ROOM_HANDLERS,
    **CONSULTATION_HANDLERS,
}


class _Socket(LeanResponse):
    """The /ws response: on the fast path it leaves aiohttp's request handling once open
    (signaling/lean_socket.py)."""

    _refusing: asyncio.BaseTransport | None = None

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Close; a frame over the limit is answered with 1009 that the client gets to read.

        aiohttp sends the 1009 and closes the connection at once, while the client may
        still be sending the rest of its frame: closing with unread bytes makes the kernel
        answer with a reset, the client loses the close frame and reports 1006. So what
        still arrives is read and dropped until the client has answered the close frame
        and gone quiet, then the connection is closed (see `_linger`).
        """
        if code != WSCloseCode.MESSAGE_TOO_BIG:
            return await super().close(code=code, message=message, drain=drain)
        self._refusing = self._transport
        try:
            closed = await super().close(code=code, message=message, drain=drain)
        finally:
            transport, self._refusing = self._refusing, None
        self._close_code = code  # what was sent, not aiohttp's 1006 for its broken reader
        if transport is not None:
            await _linger(transport)
        return closed

    def _close_transport(self) -> None:
        if self._refusing is None:
            super()._close_transport()


class _Drain(asyncio.Protocol):
    """Stands in for aiohttp's protocol after a refused frame: drops what arrives, notes
    that something did, and hands the end of the connection on to aiohttp's protocol."""

    def __init__(self, original: asyncio.BaseProtocol) -> None:
        self.original = original
        self.activity = asyncio.Event()
        self.ended = False

    def data_received(self, data: bytes) -> None:
        self.activity.set()

    def eof_received(self) -> None:
        self.ended = True
        self.activity.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.activity.set()
        self.original.connection_lost(exc)

    def pause_writing(self) -> None:
        self.original.pause_writing()

    def resume_writing(self) -> None:
        self.original.resume_writing()


async def _linger(transport: asyncio.BaseTransport) -> None:
    """Read and drop what still arrives; close once the client has gone quiet (it has sent
    the rest of its frame and its answer to the close frame) or closed, at most after
    `_LINGER_S`."""
    # No half-close: a client that sees the end of our stream may stop before it has
    # answered the close frame, and then reports 1006 itself.
    drain = _Drain(transport.get_protocol())
    transport.set_protocol(drain)
    if isinstance(transport, asyncio.ReadTransport) and not transport.is_reading():
        transport.resume_reading()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_LINGER_S):
            while not drain.ended:
                drain.activity.clear()
                # Not wait_for: Python 3.11's swallows a cancellation that comes as the
                # wait ends, and shutdown, cancelling this, would wait out _LINGER_S.
                async with asyncio.timeout(_QUIET_S):
                    await drain.activity.wait()
    transport.close()


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: one socket per signed-in tab or peer."""
    app = request.app
    settings = app[SETTINGS]
    # Browsers always send Origin on a socket upgrade; a foreign one is a page on another
    # site trying to ride on the user's cookie (cross-site WebSocket hijacking).
    if "Origin" in request.headers and not origin_allowed(request):
        return json_response(error_body("bad_origin", "Foreign origin."), status=403)
    identity = await identify(request, remember=False) or await identify_guest(request)
    if identity is None:
        return json_response(error_body("not_authenticated", "Please log in."), status=401)
    if request.query.get("as") == Role.INTERPRETER.value:
        # The interpreter's page of a colleague who also interprets: this socket is theirs
        # as an interpreter (presence, offers), their other tabs keep their own role.
        acting = await as_interpreter(identity, app.get(INTERPRETS))
        if acting is None:
            return json_response(error_body("forbidden", "Not an interpreter."), status=403)
        identity = acting

    # The hub pings every socket from one task (Hub.start): aiohttp's own heartbeat
    # would keep two timers per socket. So pings and pongs come to the session's loop.
    ws = _Socket(
        lean=settings.fast_paths,
        autoping=False,
        compress=False,
        max_msg_size=settings.ws_max_frame_bytes,
        decode_text=False,
    )
    await ws.prepare(request)
    if settings.fast_paths:
        release_http(request)
        ws.session = _opening(app, ws, identity, request.transport)
    else:
        await _session(app, ws, identity, request.transport)
    return ws


def _connect(
    app: web.Application,
    ws: _Socket,
    identity: Identity,
    transport: asyncio.BaseTransport | None,
) -> Connection:
    """The socket's connection in the hub, with its log context bound."""
    settings = app[SETTINGS]
    conn = Connection(
        identity,
        ws,
        transport,
        settings.ws_messages_per_second,
        settings.ws_burst,
        settings.ws_send_queue,
        app[HUB].turns,
    )
    structlog.contextvars.bind_contextvars(socket_id=conn.id, user_id=identity.user_id)
    log.info("socket_opened", role=identity.role)
    return conn


async def _greet(app: web.Application, conn: Connection) -> None:
    """Attach to the hub and say hello, then send the client its current state."""
    hub = app[HUB]
    await hub.attach(conn)
    await hub.run_hooks(hub.on_attach, conn)
    conn.greet(
        Hello(
            user=_greeted(conn.identity),
            heartbeat_s=int(app[SETTINGS].ws_heartbeat_s),
            server_time=app[CLOCK].now(),
        )
    )
    await hub.bring_up_to_date(conn)


async def _session(
    app: web.Application,
    ws: _Socket,
    identity: Identity,
    transport: asyncio.BaseTransport | None,
) -> None:
    """A socket's life on the plain path: greet, read frames until it closes, clean up."""
    conn = _connect(app, ws, identity, transport)
    hub = app[HUB]
    try:
        await _greet(app, conn)
        await _read(app, conn)
    except Exception:
        await _failed(conn)
    finally:
        # aiohttp may cancel the request's task when the peer's connection drops; the
        # clean-up (presence, call rooms) must still run to the end, so it is shielded.
        await asyncio.shield(hub.track(_cleanup(hub, conn)))
        await ws.close()


async def _opening(
    app: web.Application,
    ws: _Socket,
    identity: Identity,
    transport: asyncio.BaseTransport | None,
) -> None:
    """A socket's start on the fast path, run as the response's end: greet, then hand the
    frames to callbacks (signaling/lean_socket.py) and let aiohttp's request end."""
    conn = _connect(app, ws, identity, transport)
    try:
        await _greet(app, conn)
    except Exception:
        await _failed(conn)
    finally:
        # Also when cancelled (aiohttp's shutdown): the end then runs the clean-up.
        ws.listen(_Session(app, conn))


class _Session:
    """A socket's session on the fast path: where its frames go (signaling/lean_socket.py)."""

    __slots__ = ("app", "conn", "relay")

    def __init__(self, app: web.Application, conn: Connection) -> None:
        self.app = app
        self.conn = conn
        self.relay = app.get(FAST_RELAY)

    def frame(self, frame: WSMessage) -> Coroutine[Any, Any, None] | None:
        """Handle a data frame as the plain path does (plain signals relayed at once)."""
        return _on_frame(self.app, self.conn, frame, self.relay)

    def ended(self, busy: asyncio.Task[None] | None, context: Context) -> None:
        """The rest of the session (a close, the clean-up) runs as a task."""
        self.app[HUB].track(_rest(self.app, self.conn, busy), context=context)


async def _rest(app: web.Application, conn: Connection, busy: asyncio.Task[None] | None) -> None:
    """The end of a session on the fast path: the frame still being handled, what is left
    to read (a close, an error) read as the plain path reads it, then the clean-up."""
    try:
        if busy is not None:
            await asyncio.wait([busy])
            # What broke the frame's handling, as `_read` would have raised it.
            if not busy.cancelled() and (exc := busy.exception()) is not None:
                raise exc
        await _read(app, conn)
    except Exception:
        await _failed(conn)
    finally:
        await _cleanup(app[HUB], conn)
        await conn.ws.close()


async def _read(app: web.Application, conn: Connection) -> None:
    """Read and handle frames until the socket closes."""
    ws = conn.ws
    while (frame := await ws.receive()).type in DATA_FRAMES:
        if (step := _on_frame(app, conn, frame)) is not None:
            await step


def _on_frame(
    app: web.Application, conn: Connection, frame: WSMessage, relay: FastRelay | None = None
) -> Coroutine[Any, Any, None] | None:
    """Handle a data frame (a message, a ping or a pong); what is left to await, if any.
    With `relay` (the fast path), a plain `signal` is relayed by it at once."""
    kind = frame.type
    if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
        if not conn.heard_message():
            return _too_fast(conn)
        return _receive(app, conn, frame.data, relay)
    conn.heard()  # the client is alive, whatever it sent
    if kind is WSMsgType.PING:
        return conn.ws.pong(frame.data)
    return None


async def _failed(conn: Connection) -> None:
    # The response is already a socket: an error body can no longer be sent.
    log.exception("socket_failed")
    await conn.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")


def _greeted(identity: Identity) -> UserView | GuestView:
    """Who `hello` says the socket belongs to: a user, or a guest of one room."""
    if identity.role == Role.GUEST:
        assert identity.room_id is not None
        return GuestView(
            id=identity.user_id,
            display_name=identity.display_name,
            room_id=identity.room_id,
            language=identity.language,
        )
    return identity.view()


async def _cleanup(hub: Hub, conn: Connection) -> None:
    await hub.detach(conn)
    await hub.run_hooks(hub.on_disconnect, conn)
    log.info("socket_closed", code=conn.ws.close_code)


def _too_fast(conn: Connection) -> Coroutine[Any, Any, None] | None:
    """Answer a message beyond the socket's rate limit; close it after many such."""
    conn.rate_strikes += 1
    if conn.rate_strikes >= _RATE_STRIKES_BEFORE_CLOSE:
        return conn.close(CLOSE_RATE_LIMITED, "rate limit")
    conn.send(ErrorMessage(code="rate_limited", message="Too many messages; slow down."))
    return None


def _receive(
    app: web.Application, conn: Connection, data: bytes | str, relay: FastRelay | None
) -> Coroutine[Any, Any, None] | None:
    """Handle a message as far as it goes without waiting; what is left to await, if any."""
    try:
        raw = jsonio.loads(data)
    except ValueError:
        conn.send(ErrorMessage(code="invalid_json", message="The frame is not JSON."))
        return None
    if (
        relay is not None
        and type(raw) is dict
        and raw.get("type") == "signal"
        and not (_MAY_NOT_SIGNAL and conn.identity.role in _MAY_NOT_SIGNAL)
        and (signal := plain_signal(raw))
    ):
        # Answered as the checks of `_parse` would answer it; its frame needs no scan for
        # NULs (plain_signal looked at its texts: signaling/relay_fast.py), and most are
        # done here at once, without the general path's calls.
        ref = raw.get("ref")
        try:
            step = relay.signal(conn, signal[0], signal[1], ref)
        except Exception as exc:
            _answer_failure(conn, exc, "signal", ref)
            return None
        if step is None:
            return None
        conn.handling = True
        return _handling(conn, step, "signal", ref)
    conn.handling = True
    try:
        parsed = _parse(app, conn, raw, data)
    except Exception as exc:
        _answer_failure(conn, exc, None, None)
        parsed = None
    if parsed is None:
        conn.handling = False
        return None
    return _handling(conn, *parsed)


async def _handling(conn: Connection, call: Awaitable[None], kind: str, ref: str | None) -> None:
    """Await a message's handler, answering what goes wrong."""
    try:
        await call
    except Exception as exc:
        _answer_failure(conn, exc, kind, ref)
    finally:
        conn.handling = False


def _answer_failure(conn: Connection, exc: Exception, kind: str | None, ref: str | None) -> None:
    """Answer a message whose handling failed (called while handling `exc`)."""
    if isinstance(exc, TolkError):
        conn.send(ErrorMessage(ref=ref, **exc.to_wire()))
        return
    # Every frame is answered, and one that breaks a handler never ends the socket.
    log.exception("socket_handler_failed", type=kind)
    message = "Something went wrong on our side."
    conn.send(ErrorMessage(code="internal_error", message=message, ref=ref))


def _parse(
    app: web.Application, conn: Connection, raw: Any, data: bytes | str
) -> tuple[Awaitable[None], str, str | None] | None:
    """The handler call for a decoded frame, with its type and ref; None when the frame
    was answered with an error already."""
    if not isinstance(raw, dict):
        message = "A message is a JSON object with a type."
        conn.send(ErrorMessage(code="invalid_message", message=message))
        return None
    ref = raw.get("ref")
    if not isinstance(ref, str) or len(ref) > REF_MAX:
        ref = None
    if not _free_of_nul(conn, raw, data, ref):
        return None
    kind = raw.get("type")
    app[METRICS].socket_messages.inc(
        kind if isinstance(kind, str) and kind in HANDLERS else "other"
    )
    if not isinstance(kind, str):
        _refuse(conn, ref, [{"field": "type", "problem": "a message type is a string"}])
        return None
    limited = LIMITED.get(conn.identity.role)
    if limited is not None and kind not in limited[0]:
        conn.send(ErrorMessage(code="forbidden", message=limited[1], ref=ref))
        return None
    if kind not in CLIENT_MESSAGE_TYPES:
        message = f"Unknown message type {kind[:64]!r}."
        conn.send(ErrorMessage(code="unknown_type", message=message, ref=ref))
        return None
    try:
        msg = CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        _refuse(conn, ref, validation_problems(exc))
        return None
    return HANDLERS[msg.type](app, conn, msg), kind, ref


def _free_of_nul(conn: Connection, raw: dict[str, Any], data: bytes | str, ref: str | None) -> bool:
    """Whether no text of the message holds a NUL character; if one does, says where."""
    # JSON escapes a NUL; only a frame holding the escape needs the walk.
    escaped = b"\\u0000" in data if isinstance(data, bytes) else "\\u0000" in data
    if escaped and (field := nul_character_at(raw, "")):
        _refuse(conn, ref, [{"field": field, "problem": "may not contain NUL characters"}])
        return False
    return True


def _refuse(conn: Connection, ref: str | None, problems: list[dict[str, str]]) -> None:
    """Answer an invalid message, naming its first problem and listing them all."""
    first = problems[0]
    message = f"{first['field']}: {first['problem']}"
    conn.send(ErrorMessage(code="invalid_message", message=message, ref=ref, fields=problems))


async def close_all_sockets(app: web.Application) -> None:
    """On shutdown: tell every client we are going away."""
    await app[HUB].close_all(WSCloseCode.GOING_AWAY, "shutdown")
