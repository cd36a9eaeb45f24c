"""Login throttling that slows guessing without handing an attacker a lock-out.

Two counters, each in a fixed window that starts with its first count: failed logins per
(username, client address) and per client address. A login reserves one count on both
before its password is checked; the reservation is refused (429) when either counter is
full, so concurrent guesses cannot all slip past one check. A wrong password keeps the
reservation as a failure; the right one hands back its count on the address and clears
the pair. Nobody counts per username alone: failures from one address never throttle the
owner logging in from another. IPv6 clients count per /64, the block one host usually has.

The counters live in the `limits` library's storage: in memory for one instance, in Redis
(atomic INCRBY scripts) when several instances share it. Redis that does not answer
within a second makes a login 503 `unavailable`, never a login that hangs.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from limits.errors import StorageError
from limits.storage import storage_from_string

from infra.errors import TooManyRequests
from infra.outages import Unavailable

REDIS_TIMEOUT_S = 1.0
"""How long a login waits for Redis before it is answered 503 instead."""


class LoginThrottled(TooManyRequests):
    """Too many failed logins from this address, or for this username from it."""

    def __init__(self, retry_after_s: int, *, counter: str, first: bool) -> None:
        super().__init__(retry_after_s, "Too many failed logins; please wait and try again.")
        self.counter = counter
        """Which counter is full: `pair` (username and address) or `address`."""
        self.first = first
        """Whether this is the first refusal of the counter's window (worth an audit entry)."""


def address_key(address: str) -> str:
    """The unit an address is counted in: IPv4 as is, IPv6 by its /64 network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _digest(*parts: str) -> str:
    # Keys carry no usernames or addresses in the clear, and have a bounded length.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login's reservation on both counters."""

    pair_key: str
    address_key: str


class LoginThrottle:
    """Counts failed logins in memory or in Redis (shared by every instance)."""

    def __init__(
        self,
        *,
        per_user: int,
        per_address: int,
        window_s: int,
        redis_url: str | None,
        namespace: str = "tolk",
    ) -> None:
        self._pool: redis.asyncio.ConnectionPool | None = None
        if redis_url:
            # redis-py, as the bus uses, with timeouts: a paused Redis must not hang logins.
            # Our own pool (limits' documented `connection_pool` option), so that close()
            # can let go of its connections: the storage has no way to close its client.
            self._pool = redis.asyncio.ConnectionPool.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            options: dict[str, Any] = {"connection_pool": self._pool}
            self._storage: Any = storage_from_string(
                f"async+{redis_url}",
                key_prefix=f"{namespace}:login",
                implementation="redispy",
                wrap_exceptions=True,
                **options,
            )
        else:
            self._storage = storage_from_string("async+memory://", key_prefix=f"{namespace}:login")
        self.per_pair = per_user
        self.per_address = per_address
        self.window_s = window_s

    async def reserve(self, username: str, address: str) -> Attempt:
        """Count one attempt on both counters, or raise LoginThrottled when either is full."""
        net = address_key(address)
        attempt = Attempt("p:" + _digest(username, net), "a:" + _digest(net))
        async with _reachable():
            return await self._reserve(attempt)

    async def _reserve(self, attempt: Attempt) -> Attempt:
        # Both at once: with Redis, one round trip's wait instead of two.
        pair, at_address = await asyncio.gather(
            self._storage.incr(attempt.pair_key, self.window_s),
            self._storage.incr(attempt.address_key, self.window_s),
        )
        if pair <= self.per_pair and at_address <= self.per_address:
            return attempt
        # Refused attempts are not failures: hand both counts back, so that the window
        # ends when the failures that filled it are older than `window_s`.
        await asyncio.gather(
            self._give_back(attempt.pair_key), self._give_back(attempt.address_key)
        )
        full = attempt.pair_key if pair > self.per_pair else attempt.address_key
        retry = math.ceil(await self._storage.get_expiry(full) - time.time())
        noted = await self._storage.incr("n:" + full, self.window_s)
        raise LoginThrottled(
            max(retry, 1),
            counter="pair" if full == attempt.pair_key else "address",
            first=noted == 1,
        )

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: forget the pair's failures, hand the address its count back."""
        async with _reachable():
            await asyncio.gather(
                self._storage.clear(attempt.pair_key), self._give_back(attempt.address_key)
            )

    async def abandoned(self, attempt: Attempt) -> None:
        """No verdict (an error while checking): hand both counts back."""
        async with _reachable():
            await asyncio.gather(
                self._give_back(attempt.pair_key), self._give_back(attempt.address_key)
            )

    async def _give_back(self, key: str) -> None:
        await self._storage.incr(key, self.window_s, -1)

    async def close(self) -> None:
        """Close the Redis connections (on shutdown); counters in memory need nothing."""
        if self._pool is not None:
            await self._pool.aclose()


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """Turn a counter store that cannot be reached into 503 `unavailable`."""
    try:
        yield
    except StorageError:
        raise Unavailable() from None
