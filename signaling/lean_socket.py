"""A socket response whose session runs where aiohttp ends the response: the fast path for
memory. aiohttp calls `write_eof` once the handler, and the middlewares around it, have
returned; a session run there keeps neither the handler's frame nor one frame per
middleware alive for an idle socket (about 1.5 KB a socket, which is what keeps an idle
socket under 20 KB: bench/results/signaling_relay.md). The middlewares thus see the
upgrade (101, and its time). The plain path beside it (setting `TOLK_FAST_PATHS=false`)
is the handler awaiting the session; tests/signaling/test_fast_paths.py holds the two to
the same conversation.

`release_http` lets go, once a connection is a socket, of what aiohttp keeps for reading
further HTTP requests on it (which never come: after the upgrade its bytes are WebSocket
frames, read by the socket's own reader): the HTTP parser and the queue of parsed requests,
about 1.4 KB a socket (bench/results/scale.md, "An idle socket").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

_NO_REQUESTS: deque[Any] = deque(maxlen=0)
"""Stands in for every upgraded connection's queue of parsed requests: it stays empty."""


class SessionAtEnd(web.WebSocketResponse):
    """A WebSocketResponse that runs `session`, if given, as its end."""

    session: Coroutine[Any, Any, None] | None = None

    def write_eof(self, data: bytes = b"") -> Coroutine[Any, Any, None]:
        # The session itself is the awaitable (one frame less per socket); it ends by
        # closing the socket, as the end of a WebSocketResponse does.
        session, self.session = self.session, None
        return session if session is not None else super().write_eof()


def release_http(request: web.Request) -> None:
    """After the upgrade: drop the connection's HTTP parser and request queue."""
    protocol: Any = request.protocol
    # aiohttp reads them only before an upgrade; every use after one is guarded by a check
    # that the connection was upgraded or the parser is gone (as after connection_lost).
    if getattr(protocol, "_upgraded", False) and getattr(protocol, "_payload_parser", None):
        protocol._parser = None
        protocol._messages = _NO_REQUESTS
