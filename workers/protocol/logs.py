"""Structured logs: one JSON object per line on stderr, for every Tessera process.

Each line: {"ts", "level", "component", "logger", "msg"} plus "job_id" and "worker" when
known, and "exc" with the traceback. Job id and worker name come from :func:`bound`
(the worker daemon wraps each job in it) or from ``extra=`` on a single call. Modules
keep logging through ``logging.getLogger(...)`` with %-style arguments as before.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

CONTEXT_FIELDS = ("job_id", "worker")
"""Fields a record may carry, from :func:`bound` or ``extra=``."""

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("tessera_log_context",
                                                                                  default=None)


def _fields() -> dict[str, str]:
    return _context.get() or {}


@contextmanager
def bound(**fields: str) -> Iterator[None]:
    """Stamp every record logged inside the block (in this thread or task) with ``fields``."""
    token = _context.set({**_fields(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str) -> None:
    """Stamp every later record of this thread with ``fields`` (e.g. the worker name, once at start)."""
    _context.set({**_fields(), **fields})


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = _fields()
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None) or context.get(name)
            if value:
                entry[name] = str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup(component: str, level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Put the JSON formatter on the root logger (replacing its handlers); stderr by default."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
