"""Call tests: the normal settings plus STUN and TURN servers, and helpers for rooms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse

from infra.config import Settings
from tests.conftest import Stack, settings_for


@pytest.fixture
def settings(stack: Stack) -> Settings:
    return settings_for(
        stack,
        stun_urls=["stun:stun.example.org:3478"],
        turn_urls=["turn:turn.example.org:3478?transport=udp"],
        turn_secret="turn-shared-secret",
        turn_ttl_s=3600,
        # Tests run the sweep themselves after moving the clock; the job must not race them.
        sweep_interval_s=3600,
    )


async def receive_type(ws: ClientWebSocketResponse, *types: str, within: float = 5) -> Any:
    """The next message of one of `types`, skipping others (call.updated replays, ...)."""
    deadline = time.monotonic() + within
    while True:
        msg = await ws.receive_json(timeout=max(0.01, deadline - time.monotonic()))
        if msg["type"] in types:
            return msg


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 5) -> None:
    """Wait for a condition the server reaches in the background, up to a timeout."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
