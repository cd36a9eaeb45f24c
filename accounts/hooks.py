"""Hooks the composition root gives accounts for effects that belong to packages above it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

UserDeactivatedHook = Callable[[str], Awaitable[None]]
"""Runs after the commit that deactivated a user or revoked a terminal, with the user's id
(dispatch withdraws their requests still waiting)."""

USER_DEACTIVATED_HOOKS = web.AppKey("user_deactivated_hooks", list[UserDeactivatedHook])


async def user_deactivated(app: web.Application, user_id: str) -> None:
    """Run the deactivation hooks; a failure reaches the caller, whose retry (deactivating
    again) runs them again."""
    for hook in app[USER_DEACTIVATED_HOOKS]:
        await hook(user_id)
