"""/metrics after real actions: sockets, messages, requests, offers, calls and the process."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.calls.conftest import receive_type
from tests.dispatch.conftest import Desk, Person


async def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def accept_next_offer(person: Person) -> dict[str, Any]:
    offer = (await person.next_event("offer"))["offer"]
    status, body = await person.post(f"/api/offers/{offer['id']}/accept")
    assert status == 200, body
    return body


class TestMetrics:
    async def test_a_call_from_request_to_connected_media_is_counted(self, client, factory):
        """Request, offer, accept, join, signal and media show up in the figures."""
        desk = Desk(factory)
        counsellor = await desk.counsellor()
        interpreter = await desk.interpreter(["uk"])
        before = await scrape(client)
        assert value(before, "tolk_sockets_open", role="counsellor") == 1
        assert value(before, "tolk_sockets_open", role="interpreter") == 1

        await desk.ask(counsellor, "uk")
        factory.clock.advance(7)
        call = (await accept_next_offer(interpreter))["call"]
        middle = await scrape(client)
        assert value(middle, "tolk_requests_total", outcome="accepted") == 1
        assert value(middle, "tolk_offers_total", outcome="sent") == 1
        assert value(middle, "tolk_offers_total", outcome="accepted") == 1
        waits = {"language": "uk"}
        assert value(middle, "tolk_time_to_accept_seconds_count", **waits) == 1
        assert value(middle, "tolk_time_to_accept_seconds_bucket", le="5.0", **waits) == 0
        assert value(middle, "tolk_time_to_accept_seconds_bucket", le="10.0", **waits) == 1
        assert value(middle, "tolk_calls_live", state="connecting") == 1

        for person in (counsellor, interpreter):
            await person.ws.send_json({"type": "call.join", "call_id": call["id"]})
            await receive_type(person.ws, "call.joined")
        signal = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
        await counsellor.ws.send_json({"type": "signal", "call_id": call["id"], "data": signal})
        await receive_type(interpreter.ws, "signal")
        factory.clock.advance(0.6)
        for person in (counsellor, interpreter):
            media = {"type": "call.media", "call_id": call["id"], "state": "connected"}
            await person.ws.send_json(media)
        while (await receive_type(counsellor.ws, "call.updated"))["call"]["state"] != "connected":
            pass
        after = await scrape(client)
        assert value(after, "tolk_relay_messages_total", result="relayed") == 1
        assert value(after, "tolk_socket_messages_total", type="signal") == 1
        assert value(after, "tolk_socket_messages_total", type="call.join") == 2
        assert value(after, "tolk_call_setup_seconds_count") == 1
        assert value(after, "tolk_call_setup_seconds_bucket", le="0.5") == 0
        assert value(after, "tolk_call_setup_seconds_bucket", le="0.75") == 1
        assert value(after, "tolk_calls_live", state="connected") == 1
        assert value(after, "tolk_calls_live", state="connecting") == 0

        await counsellor.ws.close()
        await factory.eventually_connections(counsellor.user, 0)
        assert value(await scrape(client), "tolk_sockets_open", role="counsellor") == 0

    async def test_time_to_accept_is_labelled_with_the_rosters_languages(self, client, factory):
        """A request for a variant nobody in the roster names (a private-use subtag, a
        region) counts under the roster's language: counsellors cannot grow the labels."""
        desk = Desk(factory)
        counsellor = await desk.counsellor()
        # One interpreter each, the others being busy in their calls meanwhile.
        for asked, speaks in (("uk-x-dialekt", "uk"), ("uk-UA", "uk"), ("ar-SY", "ar-SY")):
            interpreter = await desk.interpreter([speaks])
            await desk.ask(counsellor, asked)
            await accept_next_offer(interpreter)
        samples = await scrape(client)
        languages = {
            dict(labels)["language"]: count
            for (name, labels), count in samples.items()
            if name == "tolk_time_to_accept_seconds_count"
        }
        assert languages == {"uk": 2, "ar-SY": 1}

    async def test_methods_tolk_does_not_serve_are_counted_as_other(self, client):
        """A client's choice of method cannot add series: WebDAV's and the like are `other`."""
        for method in ("GET", "PROPFIND", "MKCOL", "LINK"):
            await client.request(method, "/healthz")
        samples = await scrape(client)
        methods = {
            dict(labels)["method"]
            for (name, labels), _ in samples.items()
            if name == "tolk_http_requests_total"
        }
        assert methods == {"GET", "other"}

    async def test_declined_cancelled_and_revoked_are_counted(self, client, factory):
        """A decline, a cancel and the offers it revokes count under their outcomes."""
        desk = Desk(factory)
        counsellor = await desk.counsellor()
        first = await desk.interpreter(["ar"])
        second = await desk.interpreter(["ar"])
        request = await desk.ask(counsellor, "ar")
        offer = (await first.next_event("offer"))["offer"]
        status, _ = await first.post(f"/api/offers/{offer['id']}/decline")
        assert status in (200, 204)
        await second.next_event("offer")
        status, _ = await counsellor.delete(f"/api/requests/{request['id']}")
        assert status == 200
        samples = await scrape(client)
        assert value(samples, "tolk_offers_total", outcome="sent") == 2
        assert value(samples, "tolk_offers_total", outcome="declined") == 1
        assert value(samples, "tolk_offers_total", outcome="revoked") == 1
        assert value(samples, "tolk_requests_total", outcome="cancelled") == 1
        assert value(samples, "tolk_socket_messages_total", type="other") == 0

    async def test_process_figures_are_exported(self, client):
        """CPU, memory and open files of the process are in the registry."""
        samples = await scrape(client)
        assert value(samples, "process_resident_memory_bytes") > 10_000_000
        assert value(samples, "process_open_fds") > 0
        assert any(name == "python_gc_objects_collected_total" for name, _ in samples)

    async def test_a_held_event_loop_and_a_full_collection_are_timed(self, client):
        """A loop held for 400 ms shows as a lag over a quarter of a second; a full
        garbage collection is counted with its pause."""
        before = await scrape(client)
        time.sleep(0.4)  # noqa: ASYNC251 - the fault: nothing runs on the loop meanwhile
        gc.collect()
        # The sampler's wake-up is due before the scrape's first read is: it runs first.
        after = await scrape(client)
        assert _lags_over(after, "0.25") >= _lags_over(before, "0.25") + 1
        full = {"generation": "2"}
        assert value(after, "tolk_gc_pause_seconds_count", **full) > value(
            before, "tolk_gc_pause_seconds_count", **full
        )
        assert value(after, "tolk_gc_pause_seconds_sum", **full) > 0


def _lags_over(samples: dict, bound: str) -> float:
    """How many samples of the loop's lag were later than `bound` seconds."""
    count = value(samples, "tolk_event_loop_lag_seconds_count")
    return count - value(samples, "tolk_event_loop_lag_seconds_bucket", le=bound)


class TestDashboard:
    def test_the_grafana_dashboard_asks_only_for_exported_figures(self):
        """Every series the dashboard in deploy/grafana queries is one Tolk exports."""
        import json
        import re
        from pathlib import Path

        from infra.metrics import Metrics

        exported: set[str] = set()
        for family in Metrics().registry.collect():
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
            }.get(family.type, [""])
            exported.update(family.name + suffix for suffix in suffixes)
        board = Path(__file__).parents[2] / "deploy" / "grafana" / "tolk-dashboard.json"
        queried = {
            name
            for panel in json.loads(board.read_text())["panels"]
            for target in panel["targets"]
            for name in re.findall(r"\b((?:tolk|process)_[a-z_]+)\{", target["expr"])
        }
        assert len(queried) >= 14
        assert queried <= exported, queried - exported
