"""The typed keys under which the app holds the resources every package's edge reads."""

from __future__ import annotations

from aiohttp import web

from infra.bus import Bus
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
BUS = web.AppKey("bus", Bus)
CLOCK = web.AppKey("clock", Clock)
INSTANCE_ID = web.AppKey("instance_id", str)
