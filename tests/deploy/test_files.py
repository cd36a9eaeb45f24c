"""What an operator copies from deploy/ reads as intended."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TestEnvironmentFile:
    def test_the_example_environment_loads_as_settings(self, tmp_path):
        """deploy/tolk.env.example, sourced by a shell, gives Tolk valid settings (JSON
        lists included) without a single complaint."""
        script = (
            "from tolk.settings import load_settings; import json; s = load_settings(); "
            "print(json.dumps([s.trusted_proxies, s.turn_urls, s.public_origin]))"
        )
        done = subprocess.run(  # noqa: S603
            [  # noqa: S607 - bash from PATH
                "bash",
                "-c",
                f'set -a; . "$1"; exec "{sys.executable}" -c "$2"',
                "bash",
                str(ROOT / "deploy" / "tolk.env.example"),
                script,
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 0, done.stderr
        proxies, turn_urls, origin = json.loads(done.stdout)
        assert proxies == ["127.0.0.1"]
        assert turn_urls[-1] == "turns:turn.example.org:443?transport=tcp"
        assert origin == "https://tolk.example.org"
