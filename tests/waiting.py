"""Waiting for a condition the test cannot be told about directly (with a deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until `check()` is true, polling; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """`eventually` for a condition that needs no awaiting."""

    async def checked() -> bool:
        return check()

    await eventually(checked, timeout)


async def next_message(ws: Any, message_type: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of a type on a test socket, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            message: dict[str, Any] = await ws.receive_json()
            if message["type"] == message_type:
                return message
