"""The protocol client shared by Tolk's headless peers: HTTP login with a cookie, the
socket with reconnect and back-off, and waiting for messages by type or by `ref`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger(__name__)

Listener = Callable[[dict[str, Any]], None]
ConnectedHook = Callable[[], Awaitable[None]]


class ApiError(Exception):
    """The server answered an HTTP request with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class SocketError(Exception):
    """The server answered a socket message with `error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class TolkClient:
    """One signed-in user talking to a Tolk server over HTTP and one socket.

    `run_socket()` keeps the socket open: after a drop it reconnects with exponential
    back-off (and logs in again if the session ended), then runs the `on_connected`
    hooks, which re-announce presence and rejoin calls.
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        heartbeat_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.heartbeat_s = heartbeat_s
        self.username = username
        self._password = password
        # unsafe=True: keep cookies of IP-address hosts such as 127.0.0.1.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.user: dict[str, Any] = {}
        self.listeners: list[Listener] = []
        self.on_connected: list[ConnectedHook] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []
        self._refs = itertools.count(1)
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._log = log.bind(username=username)

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # HTTP

    async def login(self) -> dict[str, Any]:
        """POST /api/session; keeps the session cookie."""
        body = await self.request(
            "POST", "/api/session", json={"username": self.username, "password": self._password}
        )
        self.user = body["user"]
        return self.user

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """An API call from Tolk's own origin; returns the JSON body or raises ApiError."""
        headers = {"Origin": self.url}
        async with self.http.request(method, self.url + path, json=json, headers=headers) as resp:
            if resp.status == 204:
                return None
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            if resp.status >= 400:
                error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
                raise ApiError(
                    resp.status, error.get("code", "http_error"), error.get("message", "")
                )
            return body

    async def ice_servers(self) -> list[dict[str, Any]]:
        """GET /api/ice-servers."""
        return list((await self.request("GET", "/api/ice-servers"))["ice_servers"])

    # socket

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Open the socket once and wait for hello (use run_socket to stay connected)."""
        # Our own pings notice a server that vanished without closing the TCP connection.
        ws = await self.http.ws_connect(
            self.url + "/ws",
            headers={"Origin": self.url},
            heartbeat=self.heartbeat_s,
            timeout=aiohttp.ClientWSTimeout(ws_close=timeout_s),
        )
        hello = await ws.receive_json(timeout=timeout_s)
        if hello.get("type") != "hello":
            await ws.close()
            raise SocketError("no_hello", f"expected hello, got {hello.get('type')!r}")
        self.user = hello["user"]
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        self._connected.set()

    async def run_socket(self) -> None:
        """Keep the socket open until cancelled: read, dispatch, reconnect with back-off."""
        delay = self._backoff[0]
        while True:
            try:
                if self._ws is None or self._ws.closed:
                    await self.connect()
                    self._log.info("socket_connected")
                    for hook in self.on_connected:
                        asyncio.get_running_loop().create_task(self._run_hook(hook))
                delay = self._backoff[0]
                if self._reader is not None:
                    await asyncio.shield(self._reader)
                self._log.info("socket_lost")
            except asyncio.CancelledError:
                raise
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401:
                    # The login session ended (server restart with a new secret, logout):
                    # log in again before the next attempt.
                    with contextlib.suppress(Exception):
                        await self.login()
                self._log.info("socket_refused", status=exc.status)
            except (aiohttp.ClientError, OSError, TimeoutError, SocketError) as exc:
                self._log.info("socket_unreachable", error=type(exc).__name__)
            self._connected.clear()
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, self._backoff[1])

    async def _run_hook(self, hook: ConnectedHook) -> None:
        try:
            await hook()
        except Exception:
            self._log.exception("connected_hook_failed")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                message = frame.json()
            except ValueError:
                continue
            if isinstance(message, dict):
                self._dispatch(message)
        self._connected.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        for match, future in list(self._waiters):
            if not future.done() and match(message):
                future.set_result(message)
        for listener in list(self.listeners):
            try:
                listener(message)
            except Exception:
                self._log.exception("listener_failed", type=message.get("type"))

    async def send(self, message: dict[str, Any], timeout_s: float = 10.0) -> None:
        """Send a message, waiting (bounded) for the socket if it is reconnecting."""
        # asyncio.timeout, not wait_for, here and below: Python 3.11's wait_for swallows a
        # cancellation that comes as the wait ends, and a peer told to stop would run on.
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()
        assert self._ws is not None
        await self._ws.send_json(message)

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool] | str, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """The next message of a type (or matching a predicate); TimeoutError after timeout_s."""
        predicate = (lambda m: m.get("type") == match) if isinstance(match, str) else match
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self._waiters.remove(entry)

    async def ask(self, message: dict[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a message with a fresh `ref` and return the server's answer to it."""
        ref = f"{self.username}-{next(self._refs)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = ((lambda m: m.get("ref") == ref), future)
        self._waiters.append(entry)
        try:
            await self.send({**message, "ref": ref}, timeout_s)
            async with asyncio.timeout(timeout_s):
                answer = await future
        finally:
            self._waiters.remove(entry)
        if answer.get("type") == "error":
            raise SocketError(str(answer.get("code")), str(answer.get("message")))
        return answer

    async def close(self) -> None:
        """Close the socket and the HTTP session."""
        self._connected.clear()
        try:
            if self._ws is not None:
                await self._ws.close()
        finally:
            # A stop that interrupts the close handshake (a second signal while the
            # server, busy shutting down itself, has not answered) still releases both.
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
            await self.http.close()
