"""A minimal WebSocket client on asyncio for the load generators: it costs little CPU next
to the servers it measures, and hands each text frame to a callback as soon as its bytes
arrive (no reader task to wake up)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import ssl
import struct
from collections.abc import Callable
from typing import Any


class WsClient(asyncio.Protocol):
    """One client socket: upgrade, then unmasked server frames in, zero-masked frames out."""

    def __init__(self, path: str, headers: dict[str, str], on_text: Any) -> None:
        self.path = path
        self.headers = headers
        self.on_text = on_text
        self.buf = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.on_close: Callable[[Exception | None], None] | None = None
        """Called once the connection is gone (after the upgrade: the server closed it)."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before upgrade"))
        elif self.on_close is not None:
            self.on_close(exc)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(buf[:200]).decode()))
                return
            del buf[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    return
                length = struct.unpack_from("!H", buf, 2)[0]
                start = 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length = struct.unpack_from("!Q", buf, 2)[0]
                start = 10
            if len(buf) < start + length:
                return
            payload = bytes(buf[start : start + length])
            del buf[: start + length]
            if opcode == 1:
                self.on_text(payload)
            elif opcode == 9:
                self._frame(0xA, payload)

    def _frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        # A zero masking key leaves the payload as it is: no per-byte work on our side.
        assert self.transport is not None
        self.transport.write(header + b"\0\0\0\0" + payload)

    def send(self, payload: bytes) -> None:
        self._frame(1, payload)


async def open_client(
    port: int,
    path: str,
    headers: dict[str, str],
    on_text: Any,
    tls: ssl.SSLContext | None = None,
) -> WsClient:
    """A client socket to 127.0.0.1:`port` (over TLS with `tls`), once the server has
    accepted the upgrade."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(path, headers, on_text), "127.0.0.1", port, ssl=tls
    )
    await asyncio.wait_for(client.opened, 30)
    return client
