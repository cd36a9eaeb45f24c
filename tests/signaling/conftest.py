"""Signalling tests marked `uvloop` run on uvloop, the loop `tolk serve` runs on: it runs
due timers before it reads the sockets, which is what a stalled server meets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import uvloop


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "uvloop: run the test on uvloop's event loop")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]] | None:
    """uvloop for tests marked `uvloop`; asyncio's own loop for the rest."""
    if item.get_closest_marker("uvloop") is None:
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}
