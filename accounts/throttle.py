"""Login throttling: failed logins are counted per username and per address in a moving
window; past the limit, logins are refused with 429 until old failures leave the window.

It is throttling, never a lock-out: the window passes by itself, so an attacker cannot
lock an owner out for longer than the window.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from infra.errors import TooManyRequests


class LoginThrottle:
    """Counts failed logins; storage is in memory or in Redis (shared by all instances)."""

    def __init__(
        self,
        *,
        per_user: int,
        per_address: int,
        window_s: int,
        redis_url: str | None,
        namespace: str = "tolk",
    ) -> None:
        uri = f"async+{redis_url}" if redis_url else "async+memory://"
        self._storage = storage_from_string(uri, key_prefix=f"{namespace}:login")
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._user_limit = RateLimitItemPerSecond(per_user, window_s)
        self._address_limit = RateLimitItemPerSecond(per_address, window_s)

    async def check(self, username: str, address: str) -> None:
        """Raise TooManyRequests when either counter is full."""
        for limit, key in (
            (self._user_limit, f"u:{username}"),
            (self._address_limit, f"a:{address}"),
        ):
            if not await self._limiter.test(limit, key):
                stats = await self._limiter.get_window_stats(limit, key)
                retry = math.ceil(stats.reset_time - time.time())
                raise TooManyRequests(retry, "Too many failed logins; please wait and try again.")

    async def record_failure(self, username: str, address: str) -> None:
        """Count one failed login against the username and the address."""
        await self._limiter.hit(self._user_limit, f"u:{username}")
        await self._limiter.hit(self._address_limit, f"a:{address}")

    async def reset(self) -> None:
        """Forget every count (tests and admin use)."""
        await cast(Any, self._storage).reset()
