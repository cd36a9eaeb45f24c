"""Integration tests: a real server process, aiortc peers on loopback in this process."""

from __future__ import annotations

from tests.signaling.loopback import loopback_only

__all__ = ["loopback_only"]
