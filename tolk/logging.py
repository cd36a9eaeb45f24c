"""structlog, configured once per process: pretty on a terminal, JSON lines otherwise.

This module owns the process-wide logging configuration; nothing else touches it.
"""

from __future__ import annotations

import logging
import sys

import structlog

from infra.config import LogFormat

_SECRET_KEYS = frozenset({"password", "token", "secret", "credential", "sdp", "cookie"})


def _redact(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # A last line of defence: a secret passed by mistake as a log field is masked.
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "***"
    return event


def configure_logging(fmt: LogFormat = "auto", level: str = "info") -> None:
    """Configure structlog and the standard library's logging (used by aiohttp)."""
    pretty = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
