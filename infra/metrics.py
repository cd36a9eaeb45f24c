"""Prometheus metrics, kept in one registry per app (no process-wide singletons).

Counters and histograms count what this instance did (sum them over instances);
`tolk_calls_live` is read from the database at each scrape, so every instance reports
the same whole-service figure (take the max over instances).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal

from aiohttp import web
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from infra.http import Handler
from infra.loop_watch import BUCKETS as LOOP_BUCKETS
from infra.loop_watch import SAMPLE_S

FigureKind = Literal["request", "offer", "accept_wait"]
Figure = tuple[FigureKind, str, float]
"""What a committed transaction did, for the metrics: (kind, label, value)."""

# Seconds: a request is usually taken within the first wave (20 s); the queue waits 5 min.
_WAIT_BUCKETS = (1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
# Seconds from accepting to both browsers reporting media: ~0.3-0.5 s on a LAN, more via TURN.
_SETUP_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 45)


class Metrics:
    """The counters, gauges and histograms Tolk exports at /metrics."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # The process figures (CPU, memory, open files, GC) that the default registry has.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.before_scrape: list[Callable[[], Awaitable[None]]] = []
        """Read figures that are cheaper to ask for at scrape time than to keep current."""
        self._count_traffic(registry)
        self._count_dispatch(registry)
        self._count_calls(registry)
        self._count_process(registry)
        self._bus_reconnects_seen = 0
        self.readings = Readings()
        """Figures read at scrape time from the parts that keep them (bus, database, hub)."""
        registry.register(self.readings)

    def _count_traffic(self, registry: CollectorRegistry) -> None:
        """HTTP requests, sockets and their messages."""
        self.http_requests = Counter(
            "tolk_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "tolk_http_request_seconds", "HTTP request time by route", ["route"], registry=registry
        )
        self.sockets = Gauge(
            "tolk_sockets_open",
            "Open sockets on this instance by role",
            ["role"],
            registry=registry,
        )
        # Counted once per socket message: plain integers, read when /metrics is scraped.
        self.socket_messages = HotCounter(
            "tolk_socket_messages", "Client socket messages by type", "type"
        )
        self.relay_messages = HotCounter(
            "tolk_relay_messages",
            "Signals between call participants by result (relayed: passed on or held for an "
            "absent peer; refused: not a participant)",
            "result",
        )
        registry.register(self.socket_messages)
        registry.register(self.relay_messages)

    def _count_dispatch(self, registry: CollectorRegistry) -> None:
        """Requests, offers and the wait for an interpreter."""
        self.requests = Counter(
            "tolk_requests",
            "Interpreter requests that ended, by outcome (accepted, cancelled, expired)",
            ["outcome"],
            registry=registry,
        )
        self.offers = Counter(
            "tolk_offers",
            "Offers sent and decided, by outcome (sent, accepted, declined, expired, revoked)",
            ["outcome"],
            registry=registry,
        )
        self.time_to_accept = Histogram(
            "tolk_time_to_accept_seconds",
            "From a request to its acceptance by an interpreter, by language",
            ["language"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )

    def _count_calls(self, registry: CollectorRegistry) -> None:
        """Calls being set up and live, and the bus that carries their signals."""
        self.call_setup = Histogram(
            "tolk_call_setup_seconds",
            "From accepting to both sides reporting connected media",
            buckets=_SETUP_BUCKETS,
            registry=registry,
        )
        self.calls_live = Gauge(
            "tolk_calls_live",
            "Calls not ended, by state, in the whole service (read from the database)",
            ["state"],
            registry=registry,
        )
        self.bus_reconnects = Counter(
            "tolk_bus_reconnects",
            "Times this instance lost its Redis connection and started reconnecting",
            registry=registry,
        )

    def _count_process(self, registry: CollectorRegistry) -> None:
        """How late the event loop runs and how long the collector holds it (loop_watch)."""
        self.loop_lag = Histogram(
            "tolk_event_loop_lag_seconds",
            f"How late the event loop ran a task due every {SAMPLE_S * 1000:.0f} ms",
            buckets=LOOP_BUCKETS,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "tolk_gc_pause_seconds",
            "How long each garbage collection held the process, by generation",
            ["generation"],
            buckets=LOOP_BUCKETS,
            registry=registry,
        )

    def record(self, figures: list[Figure]) -> None:
        """Count what a committed transaction did."""
        for kind, label, value in figures:
            if kind == "request":
                self.requests.labels(label).inc(value)
            elif kind == "offer":
                self.offers.labels(label).inc(value)
            else:
                self.time_to_accept.labels(label).observe(value)

    def bus_reconnected(self, total: int) -> None:
        """Catch the counter up with the bus's own count of lost connections."""
        if total > self._bus_reconnects_seen:
            self.bus_reconnects.inc(total - self._bus_reconnects_seen)
            self._bus_reconnects_seen = total

    async def refresh(self) -> None:
        """Run the scrape-time readers."""
        for read in self.before_scrape:
            await read()


class HotCounter:
    """A counter with one label, bumped on the socket's hot path as a plain integer (a
    prometheus_client child takes a lock and a label lookup per count) and exported when
    /metrics is scraped. The event loop is its only writer."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._counts: dict[str, int] = {}
        self._readings: list[tuple[str, Callable[[], int]]] = []

    def inc(self, value: str) -> None:
        """Count one for this label value."""
        counts = self._counts
        counts[value] = counts.get(value, 0) + 1

    def add_reading(self, value: str, read: Callable[[], int]) -> None:
        """Add `read()` to this label value's count at each scrape: a count kept by the
        part that does the counted thing (an integer it bumps, where even `inc` costs)."""
        self._readings.append((value, read))

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        counts = dict(self._counts)
        for value, read in self._readings:
            counts[value] = counts.get(value, 0) + read()
        for value, count in counts.items():
            family.add_metric([value], count)
        yield family


class Readings:
    """Gauges and counters whose values live elsewhere, read when /metrics is scraped."""

    def __init__(self) -> None:
        self._read: list[tuple[str, str, bool, Callable[[], float]]] = []

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Export `read()` as a gauge."""
        self._read.append((name, documentation, False, read))

    def counter(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Export `read()` as a counter (`name` without `_total`)."""
        self._read.append((name, documentation, True, read))

    def collect(self) -> Iterator[Metric]:
        for name, documentation, is_counter, read in self._read:
            family = CounterMetricFamily if is_counter else GaugeMetricFamily
            yield family(name, documentation, value=read())


METRICS = web.AppKey("metrics", Metrics)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; the parser lets through any other token a client sends
(PROPFIND, LINK, ...), which would each be a series of their own."""


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each request and time it, by route template (not by raw path)."""
    started = time.perf_counter()
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    metrics = request.app[METRICS]
    method = request.method if request.method in _METHODS else "other"
    metrics.http_requests.labels(method, route, str(response.status)).inc()
    metrics.http_seconds.labels(route).observe(time.perf_counter() - started)
    return response
