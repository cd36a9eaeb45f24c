"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import pytest

from infra.config import Settings


class TestOperations:
    async def test_healthz_and_readyz(self, client):
        """Liveness answers, and readiness checks the database and the bus."""
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["checks"] == {"database": "ok", "bus": "ok"}

    async def test_metrics_in_prometheus_format(self, client):
        """/metrics counts requests by route template."""
        await client.get("/healthz")
        text = await (await client.get("/metrics")).text()
        assert 'tolk_http_requests_total{method="GET",route="/healthz",status="200"}' in text

    async def test_openapi_describes_every_api_route(self, client):
        """Every /api route of the router appears in the OpenAPI document."""
        doc = await (await client.get("/api/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        routed = {
            (r.method.lower(), r.resource.canonical)
            for r in client.app.router.routes()
            if r.resource is not None
            and r.resource.canonical.startswith("/api/")
            and r.method != "HEAD"
            and r.resource.canonical != "/api/openapi.json"
        }
        documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
        assert routed == documented
        login = doc["paths"]["/api/session"]["post"]
        schema_name = login["requestBody"]["content"]["application/json"]["schema"]["$ref"].split(
            "/"
        )[-1]
        assert set(doc["components"]["schemas"][schema_name]["required"]) == {
            "username",
            "password",
        }

    async def test_unknown_route_is_json_404(self, client):
        """Unknown paths answer with the contract's error body."""
        resp = await client.get("/api/nothing-here")
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"

    async def test_health_and_metrics_say_the_database_and_the_bus_are_up(self, client):
        """/healthz names the state of the database and the bus without asking them, and
        /metrics exports it with the outage counters."""
        body = await (await client.get("/healthz")).json()
        assert body == {"status": "ok", "database": "up", "bus": "connected"}
        text = await (await client.get("/metrics")).text()
        for line in (
            "tolk_database_up 1.0",
            "tolk_database_outages_total 0.0",
            "tolk_bus_connected 1.0",
            "tolk_bus_reconnects_total 0.0",
            "tolk_bus_publish_retries_total 0.0",
            "tolk_bus_publish_dropped_total 0.0",
            "tolk_socket_resyncs_total 0.0",
        ):
            assert line in text.splitlines(), line


class TestBlankMetricsToken:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        # `TOLK_METRICS_TOKEN=` left empty in an environment file; the test client connects
        # from 127.0.0.1, trusted to forward the address of a client elsewhere.
        blank = Settings(_env_file=None, metrics_token="")
        return settings.model_copy(
            update={"trusted_proxies": ["127.0.0.0/8"], "metrics_token": blank.metrics_token}
        )

    async def test_an_empty_token_opens_metrics_to_nobody_elsewhere(self, client):
        """A blank TOLK_METRICS_TOKEN counts as unset: a request from another host without
        any Authorization header gets 401, not the figures."""
        resp = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert resp.status == 401
        assert "tolk_http" not in await resp.text()
