"""Run every benchmark in turn (`make bench`); each records its results in bench/results/."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    ["bench.dispatch_latency", "--write"],
    ["bench.signaling_relay"],
    ["bench.sqlite_paths"],
    ["bench.call_setup"],
    ["bench.room_peers"],
    ["bench.room_setup"],
    ["bench.export_usage"],
    ["bench.retention_purge"],
    ["bench.stats_year"],
    ["bench.scale", "--write"],
)


def main() -> int:
    """Run the benchmarks one after the other; stop at the first that fails."""
    for module, *args in BENCHMARKS:
        print(f"== {module}", flush=True)
        result = subprocess.run([sys.executable, "-m", module, *args], check=False)
        if result.returncode != 0:
            return result.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
