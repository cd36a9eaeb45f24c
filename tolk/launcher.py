"""`tolk demo`: the service plus simulated interpreters, so a new user can request a
language and see a call connect with nobody else involved. Ctrl-C stops them all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

from infra.config import Settings
from tolk.demo import DEMO_PASSWORD, INTERPRETERS

SIMULATED = ("olena", "layla", "farid")
"""Demo interpreters played by `tolk sim-interpreter`: Ukrainian, Arabic and Dari."""


def demo_url(settings: Settings) -> str:
    """Where the simulated interpreters reach the server."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}"


def demo_commands(settings: Settings) -> list[list[str]]:
    """The processes of the demo: `tolk serve`, then one simulated interpreter each."""
    url = demo_url(settings)
    tolk = [sys.executable, "-m", "tolk"]
    commands = [[*tolk, "serve"]]
    for interpreter in INTERPRETERS:
        if interpreter.username in SIMULATED:
            commands.append(
                [
                    *tolk,
                    "sim-interpreter",
                    "--url",
                    url,
                    "--username",
                    interpreter.username,
                    "--password",
                    DEMO_PASSWORD,
                    "--languages",
                    *interpreter.languages,
                ]
            )
    return commands


def run_demo(settings: Settings) -> int:
    """Run the demo's processes until Ctrl-C (or SIGTERM) or one of them exits."""
    procs = [subprocess.Popen(cmd) for cmd in demo_commands(settings)]  # noqa: S603
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(
        f"Tolk demo: {demo_url(settings)}, simulated interpreters: {', '.join(SIMULATED)}"
        " (Ctrl-C stops)"
    )
    code = 0
    while not stopping:
        exited = [p for p in procs if p.poll() is not None]
        if exited:
            code = exited[0].returncode or 0
            break
        time.sleep(0.2)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return code
