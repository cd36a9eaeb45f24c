"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.appkeys import BUS, DATABASE, SETTINGS
from infra.http import error_body, json_response
from infra.metrics import METRICS

OPENAPI = web.AppKey("openapi", dict[str, Any])

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """The database and the bus answer."""
    checks: dict[str, str] = {}
    for name, probe in (("database", request.app[DATABASE].ping), ("bus", request.app[BUS].ping)):
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; with TOLK_METRICS_TOKEN set, only for that bearer token."""
    token = request.app[SETTINGS].metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            return json_response(error_body("not_authenticated", "Metrics need a token."), 401)
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of every HTTP endpoint."""
    return json_response(request.app[OPENAPI])
