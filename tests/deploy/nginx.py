"""deploy/nginx/tolk.conf run by a private nginx: the site's "site:" lines rendered for this
test's ports, certificate and folders, everything else exactly as an operator copies it.

The nginx runs in the foreground with its own prefix, pid, logs and temporary folders;
the system's nginx (if any) is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.processes import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "tolk.conf"
STATIC = ROOT / "static"


def nginx_binary() -> str:
    """Debian's nginx (scripts/setup.sh --test installs it), or skip."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip("nginx is not installed (scripts/setup.sh --test installs it)")
    return found


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603
        [  # noqa: S607 - Debian's openssl from PATH
            "openssl", "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


def render_site(text: str, replacements: dict[str, str]) -> str:
    """The site with each "site:" value replaced; each must occur exactly once."""
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{old!r} is not once in {SITE}"
        text = text.replace(old, new)
    return text


class Nginx:
    """The deployment's nginx in front of the given instance ports."""

    def __init__(
        self,
        folder: Path,
        instance_ports: list[int],
        worker_connections: int = 512,
        workers: int = 1,
    ) -> None:
        assert len(instance_ports) == 2, "the site names two instances"
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.http_port = free_port()
        self.https_port = free_port()
        self.origin = f"https://127.0.0.1:{self.https_port}"
        self.cert, key = make_certificate(folder)
        site = render_site(
            SITE.read_text(),
            {
                "server 127.0.0.1:8081": f"server 127.0.0.1:{instance_ports[0]}",
                "server 127.0.0.1:8082": f"server 127.0.0.1:{instance_ports[1]}",
                "listen 80;": f"listen 127.0.0.1:{self.http_port};",
                "listen [::]:80;": "",
                "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
                "listen [::]:443 ssl;": "",
                "/etc/letsencrypt/live/tolk.example.org/fullchain.pem": str(self.cert),
                "/etc/letsencrypt/live/tolk.example.org/privkey.pem": str(key),
                "/var/log/nginx/tolk.access.log": str(folder / "access.log"),
                "/var/log/nginx/tolk.error.log": str(folder / "error.log"),
                "alias /opt/tolk/static/;": f"alias {STATIC}/;",
            },
        )
        (folder / "tolk.conf").write_text(site)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, workers would switch to www-data, who may not read this checkout.
        user = "user root;" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"""{user}
worker_processes {workers};
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
# A proxied socket counts twice in worker_connections (client and instance side).
worker_rlimit_nofile {worker_connections + 64};
events {{ worker_connections {worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
{temp}
    include {folder / "tolk.conf"};
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15) -> None:
        """Start nginx in the foreground and wait until it accepts connections."""
        binary = nginx_binary()
        args = [binary, "-p", str(self.folder), "-e", str(self.folder / "error.log")]
        args += ["-c", str(self.folder / "nginx.conf")]
        check = subprocess.run(  # noqa: S603
            [*args, "-t"], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        with (self.folder / "stdout.log").open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [*args, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.tail()
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, "nginx did not come up\n" + self.tail()
                time.sleep(0.05)

    def tail(self) -> str:
        log = self.folder / "error.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (fast shutdown: open sockets are cut), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        stop(self.proc)
