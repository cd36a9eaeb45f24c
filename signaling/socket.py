"""The `/ws` endpoint: authenticate the upgrade, say hello, then parse each frame once and
hand it to the handler for its type."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from accounts.access import identify, origin_allowed
from infra import jsonio
from infra.appkeys import CLOCK, SETTINGS
from infra.errors import TolkError
from infra.http import error_body, json_response, validation_problems
from signaling import replies
from signaling.hub import CLOSE_RATE_LIMITED, Connection, Hub, TokenBucket
from signaling.keys import HUB
from signaling.messages import CLIENT_MESSAGE, CLIENT_MESSAGE_TYPES, Ping
from signaling.presence import handle_presence
from signaling.rooms import ROOM_HANDLERS

log = structlog.get_logger(__name__)

MessageHandler = Callable[[web.Application, Connection, Any], Awaitable[None]]
_RATE_STRIKES_BEFORE_CLOSE = 50


async def _ping(app: web.Application, conn: Connection, msg: Ping) -> None:
    conn.send(replies.answer("pong", msg.ref))


HANDLERS: dict[str, MessageHandler] = {
    "ping": _ping,
    "presence": handle_presence,
    **ROOM_HANDLERS,
}


async def websocket(request: web.Request) -> web.StreamResponse:
    """GET /ws: one socket per signed-in tab or peer."""
    app = request.app
    settings = app[SETTINGS]
    # Browsers always send Origin on a socket upgrade; a foreign one is a page on another
    # site trying to ride on the user's cookie (cross-site WebSocket hijacking).
    if "Origin" in request.headers and not origin_allowed(request):
        return json_response(error_body("bad_origin", "Foreign origin."), status=403)
    identity = await identify(request)
    if identity is None:
        return json_response(error_body("not_authenticated", "Please log in."), status=401)

    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_s,
        compress=False,
        max_msg_size=settings.ws_max_frame_bytes,
        decode_text=False,
    )
    await ws.prepare(request)
    hub = app[HUB]
    conn = Connection(
        identity,
        ws,
        TokenBucket(settings.ws_messages_per_second, settings.ws_burst),
        settings.ws_send_queue,
    )
    structlog.contextvars.bind_contextvars(socket_id=conn.id, user_id=identity.user_id)
    log.info("socket_opened", role=identity.role)
    try:
        await hub.attach(conn)
        await hub.run_hooks(hub.on_attach, conn)
        conn.send(replies.hello(identity, settings.ws_heartbeat_s, app[CLOCK].now()))
        await hub.run_hooks(hub.on_connect, conn)
        async for frame in ws:
            if frame.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await _receive(app, conn, frame.data)
            elif frame.type == WSMsgType.ERROR:
                break
    except Exception:
        # The response is already a socket: an error body can no longer be sent.
        log.exception("socket_failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        # aiohttp cancels the handler when the peer's connection drops; the clean-up
        # (presence, call rooms) must still run to the end, so it is shielded.
        await asyncio.shield(hub.track(_cleanup(hub, conn)))
    return ws


async def _cleanup(hub: Hub, conn: Connection) -> None:
    await hub.detach(conn)
    await hub.run_hooks(hub.on_disconnect, conn)
    log.info("socket_closed", code=conn.ws.close_code)


async def _receive(app: web.Application, conn: Connection, data: bytes | str) -> None:
    if not conn.bucket.take():
        conn.rate_strikes += 1
        if conn.rate_strikes >= _RATE_STRIKES_BEFORE_CLOSE:
            await conn.close(CLOSE_RATE_LIMITED, "rate limit")
        else:
            conn.send(replies.error("rate_limited", "Too many messages; slow down."))
        return
    try:
        raw = jsonio.loads(data)
    except ValueError:
        conn.send(replies.error("invalid_json", "The frame is not JSON."))
        return
    if not isinstance(raw, dict):
        conn.send(replies.error("invalid_message", "A message is a JSON object with a type."))
        return
    ref = raw.get("ref") if isinstance(raw.get("ref"), str) else None
    kind = raw.get("type")
    if kind not in CLIENT_MESSAGE_TYPES:
        conn.send(replies.error("unknown_type", f"Unknown message type {kind!r}.", ref))
        return
    try:
        msg = CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        problems = validation_problems(exc)
        conn.send(
            replies.error(
                "invalid_message",
                f"{problems[0]['field']}: {problems[0]['problem']}",
                ref,
                fields=problems,
            )
        )
        return
    try:
        await HANDLERS[msg.type](app, conn, msg)
    except TolkError as exc:
        conn.send(replies.error(exc.code, exc.message, ref, **exc.details))
    except Exception:
        log.exception("socket_handler_failed", type=kind)
        conn.send(replies.error("internal_error", "Something went wrong on our side.", ref))


async def close_all_sockets(app: web.Application) -> None:
    """On shutdown: tell every client we are going away."""
    await app[HUB].close_all(WSCloseCode.GOING_AWAY, "shutdown")
