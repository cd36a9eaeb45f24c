"""How fast this machine is right now, for figures read beside those of other machines: a
shared machine's speed changes from hour to hour, and two machines here differed 2x in the
kernel's cost of a socket's message while their Python ran at the same pace."""

from __future__ import annotations

import socket
import time

_MESSAGE = b"x" * 1500
_ROUND_TRIPS = 5000


def machine_pace() -> float:
    """Seconds a fixed pure-Python loop takes here (median of three)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        sum(range(10**7))
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


def kernel_pace() -> float:
    """Microseconds per round trip of a 1.5 KB message over a loopback TCP connection
    (median of three runs): the kernel's share of a relayed signal, which `machine_pace`
    does not see."""
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as a,
    ):
        b, _ = listener.accept()
        with b:
            for end in (a, b):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(_ROUND_TRIPS):
                    a.sendall(_MESSAGE)
                    _receive(b, len(_MESSAGE))
                    b.sendall(_MESSAGE)
                    _receive(a, len(_MESSAGE))
                times.append((time.perf_counter() - started) / _ROUND_TRIPS * 1e6)
    return sorted(times)[1]


def _receive(end: socket.socket, size: int) -> None:
    while size:
        size -= len(end.recv(size))
