"""Round trips a counsellor's request makes on PostgreSQL and Redis before its offers leave.

Puts a counting TCP proxy in front of PostgreSQL and of Redis, runs `tolk serve` through
them with a few hundred interpreters online, and counts the server's writes to each
(one write is one awaited round trip: asyncpg and redis-py send a statement or a command,
or a pipeline, in one write) from POST /api/requests until both its response and its
first offer have arrived. Three cases, each for the same counsellors in turn:

- first use: the token's first use in the minute (its "last used" write is due);
- token read: used again after the identity cache's entry ran out (`TOLK_IDENTITY_CACHE_S`);
- cached: used again at once (identity from the cache).

    python -m bench.round_trips [--counsellors 15]

Background jobs (sweeps each second) share the proxies: each case reports the count most
requests had (the mode) and the range.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from bench.dispatch_latency import (
    LANGUAGES,
    POSTGRES_URL,
    REDIS_URL,
    Listener,
    free_port,
    fresh_postgres,
    seed,
    start_server,
)

_DATABASE = "tolk_round_trips"
"""A database of its own: `bench.dispatch_latency` may be running beside it."""


@dataclass
class Proxy:
    """A TCP proxy that counts the writes its clients send to the server behind it."""

    target: tuple[str, int]
    writes: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    async def start(self) -> int:
        """Listen on a free port; returns it."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(65536):
                    if count:
                        self.writes += 1
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _host_port(url: str, default: int) -> tuple[str, int]:
    netloc = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host, int(port or default)


async def _one(
    http: aiohttp.ClientSession,
    base: str,
    token: str,
    listener: Listener,
    proxies: tuple[Proxy, Proxy],
) -> tuple[int, int]:
    """One request's writes to PostgreSQL and Redis until its response and first offer."""
    pg, redis = proxies
    headers = {"Authorization": f"Bearer {token}"}
    before = pg.writes, redis.writes
    async with http.post(
        f"{base}/api/requests", json={"language": LANGUAGES[0]}, headers=headers
    ) as resp:
        body = await resp.json()
    if resp.status != 201:
        raise RuntimeError(f"request refused: {resp.status} {body}")
    request_id = body["request"]["id"]
    await listener.wait_for(request_id)
    counted = pg.writes - before[0], redis.writes - before[1]
    async with http.delete(f"{base}/api/requests/{request_id}", headers=headers):
        pass
    return counted


def _summary(name: str, counts: list[tuple[int, int]]) -> str:
    pg = [c[0] for c in counts]
    redis = [c[1] for c in counts]
    total = [a + b for a, b in counts]

    def mode(values: list[int]) -> int:
        return collections.Counter(values).most_common(1)[0][0]

    return (
        f"| {name} | {mode(total)} | {mode(pg)} | {mode(redis)} "
        f"| {min(total)}-{max(total)} | {statistics.mean(total):.1f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counsellors", type=int, default=15)
    parser.add_argument("--interpreters", type=int, default=300)
    args = parser.parse_args()
    pg_url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + _DATABASE
    await fresh_postgres(pg_url)
    # Twice the counsellors: the second half warms the pools up (connections opened).
    roster = await seed(pg_url, args.interpreters, random.Random(1), 2 * args.counsellors)
    pg, redis = Proxy(_host_port(pg_url, 5432)), Proxy(_host_port(REDIS_URL, 6379))
    pg_port, redis_port = await pg.start(), await redis.start()
    host = _host_port(pg_url, 5432)[0]
    proxied_pg = pg_url.replace(f"{host}:{_host_port(pg_url, 5432)[1]}", f"127.0.0.1:{pg_port}")
    redis_host, redis_real = _host_port(REDIS_URL, 6379)
    proxied_redis = REDIS_URL.replace(f"{redis_host}:{redis_real}", f"127.0.0.1:{redis_port}")
    ttl = float(os.environ.get("TOLK_IDENTITY_CACHE_S", "5"))
    port = free_port()
    server = await start_server(proxied_pg, proxied_redis, port)
    base = f"http://127.0.0.1:{port}"
    listener = Listener()
    cases: dict[str, list[tuple[int, int]]] = {}
    try:
        async with aiohttp.ClientSession() as http:
            await listener.open(port, roster.interpreters)
            tokens, warm = (
                roster.counsellors[: args.counsellors],
                roster.counsellors[args.counsellors :],
            )
            for token in warm:
                await _one(http, base, token, listener, (pg, redis))
            for case in ("first use", "token read", "cached"):
                if case == "token read":
                    # Past the identity cache's entries, well within the token's minute.
                    await asyncio.sleep(ttl + 0.5)
                started = time.monotonic()
                for token in tokens:
                    counted = await _one(http, base, token, listener, (pg, redis))
                    cases.setdefault(case, []).append(counted)
                if case == "token read" and time.monotonic() - started > 50:
                    print("warning: the minute between last-used writes ran out", file=sys.stderr)
            listener.close()
    finally:
        server.terminate()
        await server.wait()
        pg.close()
        redis.close()
    print(f"{args.counsellors} counsellors, {args.interpreters} interpreters online; ", end="")
    print(f"TOLK_FAST_PATHS={os.environ.get('TOLK_FAST_PATHS', 'true')}")
    print("")
    print("| case | round trips (mode) | PostgreSQL | Redis | range | mean |")
    print("|---|---|---|---|---|---|")
    for case, counts in cases.items():
        print(_summary(case, counts))


if __name__ == "__main__":
    asyncio.run(main())
