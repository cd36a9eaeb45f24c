"""Fixtures for aiortc tests that must stay on this machine's loopback interface."""

from __future__ import annotations

from pathlib import Path

import aioice.ice
import pytest

from tests.conftest import Stack


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice never offers 127.0.0.1; make it the only host address, so pairs are loopback."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Stack:
    """Media tests do not depend on the database: SQLite only, once."""
    return Stack("sqlite", f"sqlite+aiosqlite:///{tmp_path}/tolk.db", None, None)
