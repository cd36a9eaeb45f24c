"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from ipaddress import ip_address, ip_network
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.appkeys import BUS, DATABASE, SETTINGS
from infra.http import error_body, json_response
from infra.metrics import METRICS

OPENAPI = web.AppKey("openapi", dict[str, Any])

routes = web.RouteTableDef()


READY_CHECK_S = 0.8
"""Each readiness check gives up after this long: /readyz answers within a second."""


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up; says, without asking them, whether the database and the bus were
    reachable when last used."""
    app = request.app
    return json_response(
        {
            "status": "ok",
            "database": "up" if app[DATABASE].outages.is_up else "down",
            "bus": "connected" if app[BUS].stats.connected else "reconnecting",
        }
    )


async def _check(probe: Callable[[], Awaitable[None]]) -> str:
    try:
        async with asyncio.timeout(READY_CHECK_S):  # not wait_for: it can swallow a cancel (3.11)
            await probe()
    except TimeoutError:
        return f"unreachable: no answer within {READY_CHECK_S} s"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """The database and the bus answer, each within READY_CHECK_S (checked at once)."""
    app = request.app
    database, bus = await asyncio.gather(_check(app[DATABASE].ping), _check(app[BUS].ping))
    checks = {"database": database, "bus": bus}
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format, for clients in TOLK_METRICS_NETWORKS or with TOLK_METRICS_TOKEN."""
    if not _may_read_metrics(request):
        return json_response(
            error_body("not_authenticated", "Metrics need the metrics token."), 401
        )
    figures = request.app[METRICS]
    await figures.refresh()
    body = generate_latest(figures.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _may_read_metrics(request: web.Request) -> bool:
    # The figures name every route and how busy the service is: no business of the
    # internet, so the default is this host only (request.remote is the client's address,
    # also behind a trusted proxy).
    settings = request.app[SETTINGS]
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return True
    try:
        client = ip_address(request.remote or "")
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    return any(client in ip_network(net) for net in settings.metrics_networks)


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of every HTTP endpoint."""
    return json_response(request.app[OPENAPI])
