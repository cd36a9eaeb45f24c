"""Prometheus metrics, kept in one registry per app (no process-wide singletons)."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from infra.http import Handler


class Metrics:
    """The counters and histograms Tolk exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "tolk_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "tolk_http_request_seconds",
            "HTTP request time by route",
            ["route"],
            registry=self.registry,
        )
        self.sockets = Gauge(
            "tolk_sockets_open", "Open sockets on this instance", registry=self.registry
        )
        self.socket_messages = Counter(
            "tolk_socket_messages",
            "Client socket messages by type",
            ["type"],
            registry=self.registry,
        )


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each request and time it, by route template (not by raw path)."""
    started = time.perf_counter()
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
    return response
