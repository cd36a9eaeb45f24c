"""How `tolk serve` has the C allocator keep memory: the heap's free top is kept for the
next message rather than handed back and faulted in again (tolk/cli.py)."""

from __future__ import annotations

import subprocess
import sys

# Half a MiB in 64 KiB blocks from the top of the heap, written, freed, asked for again: what
# relaying a burst of signals does with its frames. Prints the page faults of 20 rounds.
_CHURN = """
import ctypes, resource
{setup}
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def churn():
    blocks = [libc.malloc(64 * 1024) for _ in range(8)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in reversed(blocks):
        libc.free(block)
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
_SERVE = "from tolk.cli import _return_large_blocks\n_return_large_blocks()"


def page_faults(setup: str) -> int:
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", _CHURN.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


def test_memory_freed_at_the_heaps_top_is_kept_for_the_next_burst():
    """As `tolk serve` sets the allocator, 20 rounds of half a MiB fault in (nearly) no page
    again; trimmed back to 128 KiB after each round, glibc faulted 96 pages in per round."""
    assert page_faults(_SERVE) < 100
    assert page_faults("") > 20 * 50  # glibc as it comes: trimmed to 128 KiB each round
