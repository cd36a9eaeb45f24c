"""A real coturn on loopback for tests, with TURN REST API auth (`use-auth-secret`)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURNSERVER = "/usr/bin/turnserver"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_port() -> int:
    # coturn listens on the port over UDP and TCP, and on the next port as the RFC 5780
    # alternative: all four must be free, or it loops forever retrying the bind.
    for _ in range(50):
        port = free_port()
        try:
            for candidate in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
    raise RuntimeError("no free listening port for coturn")


def _free_block(size: int) -> int:
    # A run of UDP ports for the relay allocations; the OS chooses the start.
    for _ in range(50):
        start = free_port()
        if start + size > 65535:
            continue
        try:
            for port in range(start, start + size):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise RuntimeError("no free block of UDP ports")


@dataclass
class Coturn:
    """A running turnserver: where it listens, its shared secret, and its log."""

    port: int
    secret: str
    realm: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> str:
        """SIGTERM turnserver, wait for it, and return its whole log (flushed at exit)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.log()


def _answers(port: int) -> bool:
    # coturn answers a STUN binding request once it is ready.
    request = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + secrets.token_bytes(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        try:
            s.sendto(request, ("127.0.0.1", port))
            return s.recv(2048)[:2] == b"\x01\x01"
        except OSError:
            return False


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """Start turnserver on free loopback ports; SIGTERM it at the end."""
    if not os.path.exists(TURNSERVER):
        pytest.skip("coturn is not installed (scripts/setup.sh --test installs it)")
    port = _listening_port()
    relay_start = _free_block(20)
    while relay_start - 1 <= port <= relay_start + 20:
        relay_start = _free_block(20)
    secret = secrets.token_hex(16)
    realm = "tolk.test"
    log_path = tmp_path / "turn.log"
    args = [
        TURNSERVER,
        "-n",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={relay_start}",
        f"--max-port={relay_start + 19}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={realm}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        f"--userdb={tmp_path}/turndb",
        f"--pidfile={tmp_path}/turn.pid",
        f"--log-file={log_path}",
        "--simple-log",
        "--verbose",
        # Tests only: production coturn must refuse loopback and private peers.
        "--allow-loopback-peers",
    ]
    proc = subprocess.Popen(  # noqa: S603 (fixed arguments)
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        turn = Coturn(port, secret, realm, log_path, proc)
        yield turn
    finally:
        Coturn(port, secret, realm, log_path, proc).stop()
