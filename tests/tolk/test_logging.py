"""Log lines an operator can live with: JSON with the logger's name, tracebacks kept, other
libraries only from WARNING, and the client's address behind a proxy."""

from __future__ import annotations

import json
import subprocess
import sys

import aiohttp

from tests.integration.server import serving

_SNIPPET = """
import logging, structlog
from tolk.logging import configure_logging
configure_logging("json", "{level}")
log = structlog.get_logger("signaling.hub")
log.info("own_event", n=1)
log.debug("own_detail")
logging.getLogger("apscheduler.executors.default").info("Running job")
logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("own_failure")
    logging.getLogger("aiohttp.server").exception("Error handling request")
"""


def lines_of(level: str) -> list[dict]:
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _SNIPPET.format(level=level)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [json.loads(line) for line in done.stderr.splitlines()]


class TestLogLines:
    def test_other_libraries_speak_from_warning_and_every_line_names_its_logger(self):
        """At info: Tolk's info lines, no APScheduler chatter, its warnings still shown."""
        lines = lines_of("info")
        assert [(line["logger"], line["event"]) for line in lines] == [
            ("signaling.hub", "own_event"),
            ("apscheduler.scheduler", "Run time of job was missed"),
            ("signaling.hub", "own_failure"),
            ("aiohttp.server", "Error handling request"),
        ]

    def test_exceptions_keep_their_traceback_in_json(self):
        """Tolk's and other libraries' errors carry the traceback as a field."""
        failures = [line for line in lines_of("info") if line["level"] == "error"]
        assert len(failures) == 2
        for line in failures:
            assert line["exception"].startswith("Traceback (most recent call last)")
            assert "ZeroDivisionError" in line["exception"]

    def test_debug_shows_everything(self):
        """TOLK_LOG_LEVEL=debug lets other libraries' info lines through too."""
        events = [line["event"] for line in lines_of("debug")]
        assert "Running job" in events
        assert "own_detail" in events

    def test_secrets_passed_by_mistake_are_masked_by_any_such_name(self):
        """A field named as a secret, or ending so, is masked; an id of a token is not."""
        snippet = (
            "import structlog\n"
            "from tolk.logging import configure_logging\n"
            "configure_logging('json', 'info')\n"
            "structlog.get_logger('accounts').info('oops', password='p1', new_password='p2',"
            " api_token='t1', Authorization='Bearer t2', turn_secret='s1', token_id='tok-7')\n"
        )
        done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=30, check=True
        )
        (line,) = [json.loads(text) for text in done.stderr.splitlines()]
        for key in ("password", "new_password", "api_token", "Authorization", "turn_secret"):
            assert line[key] == "***", key
        assert line["token_id"] == "tok-7"
        for secret in ("p1", "p2", "t1", "t2", "s1"):
            assert secret not in done.stderr


class TestServerLog:
    async def test_a_served_socket_logs_the_client_behind_the_proxy(self, tmp_path):
        """`tolk serve` behind a trusted proxy: JSON lines, each naming its logger, the
        socket's lines carrying the forwarded client address, no scheduler chatter."""
        async with serving(
            "sqlite",
            tmp_path,
            TOLK_TRUSTED_PROXIES='["127.0.0.1"]',
            TOLK_SWEEP_INTERVAL_S="0.2",
        ) as server:
            via_proxy = {"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "http"}
            jar = aiohttp.CookieJar(unsafe=True)  # cookies of a bare IP address
            async with aiohttp.ClientSession(headers=via_proxy, cookie_jar=jar) as http:
                login = {"username": "berater.caritas", "password": "demo-tolk-2026"}
                async with http.post(server.url + "/api/session", json=login) as resp:
                    assert resp.status == 200
                async with http.ws_connect(server.url + "/ws") as ws:
                    assert (await ws.receive_json())["type"] == "hello"
                # The scheduler has run its jobs several times by now (every 200 ms).
                async with http.get(server.url + "/healthz") as resp:
                    assert resp.status == 200
        lines = [json.loads(line) for line in server.log.read_text().splitlines()]
        assert all("logger" in line for line in lines), lines
        opened = [line for line in lines if line["event"] == "socket_opened"]
        assert [line["client"] for line in opened] == ["198.51.100.9"]
        chatter = [
            line
            for line in lines
            if line["logger"].startswith("apscheduler") and line["level"] in ("debug", "info")
        ]
        assert not chatter
