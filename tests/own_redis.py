"""A Redis server of a test's own, on its own port, that the test may stop, pause and start
again (the shared one at 6379 is never touched)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port


class OwnRedis:
    """`redis-server --port N` without persistence: stop, pause, resume and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self._binary = shutil.which("redis-server") or "redis-server"

    def start(self) -> None:
        """Start on the port (again) and wait until it accepts connections."""
        self.proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: the server goes away and every connection to it breaks."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after a pause."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


@contextlib.contextmanager
def own_redis(workdir: Path) -> Iterator[OwnRedis]:
    """A running OwnRedis, stopped at the end whatever state the test left it in."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
