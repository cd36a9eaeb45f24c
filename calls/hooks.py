"""Hooks the composition root gives calls for effects that belong to packages above it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from calls.models import Call

CallEndedHook = Callable[[AsyncSession, Call], Awaitable[None]]
"""Runs inside the transaction that ended a call, once per call (billing records usage)."""

CALL_ENDED_HOOKS = web.AppKey("call_ended_hooks", list[CallEndedHook])
