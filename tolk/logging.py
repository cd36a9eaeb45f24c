"""structlog, configured once per process: pretty on a terminal, JSON lines otherwise.

This module owns the process-wide logging configuration; nothing else touches it. Tolk's
own events go straight to structlog's printer (the hot path never enters the standard
library's logging); other libraries (aiohttp, APScheduler, aiortc, ...) log through the
standard library, whose records pass the same processors and renderer, at WARNING unless
the level is `debug`. Every line names its logger and, on errors, carries the traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from infra.config import LogFormat

_SECRET_KEYS = frozenset(
    {"password", "token", "secret", "credential", "sdp", "cookie", "authorization"}
)
_SECRET_SUFFIXES = tuple("_" + key for key in _SECRET_KEYS)
"""`new_password`, `api_token`, `turn_secret`: secrets too (`token_id` names one, it is none)."""


def _redact(
    _logger: object, _name: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # A last line of defence: a secret passed by mistake as a log field is masked.
    for key in list(event):
        name = key.lower()
        if name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES):
            event[key] = "***"
    return event


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's printer, knowing the name it was asked for (`get_logger(__name__)`)."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


def _printer_factory(file: TextIO) -> Any:
    def make(*args: Any) -> _NamedPrintLogger:
        return _NamedPrintLogger(file, str(args[0]) if args else "tolk")

    return make


def configure_logging(fmt: LogFormat = "auto", level: str = "info") -> None:
    """Configure structlog and the standard library's logging (used by other libraries)."""
    pretty = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    # Tracebacks as plain text in an `exception` field (rich's pretty tracebacks, with
    # every local variable, take long enough to stall the loop and may show secrets).
    tracebacks: list[structlog.typing.Processor] = [structlog.processors.format_exc_info]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, *tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_printer_factory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tracebacks,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Other libraries talk a lot at INFO (APScheduler: two lines per job run, several
    # jobs a second): only their warnings and errors, unless debugging.
    root.setLevel(logging.DEBUG if level == "debug" else max(logging.WARNING, _level(level)))
    # aiohttp's access log repeats what the metrics count; alembic narrates each step.
    for noisy in ("aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    return value if isinstance(value, int) else logging.INFO
