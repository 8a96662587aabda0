"""Structured logs as an option: ``ALPHA_LOG_FORMAT=json`` makes the platform's Python loggers (and uvicorn's access
and error loggers, when the API runs) write one JSON object per line to stderr:

    {"time": "2024-03-01T14:02:03.123+00:00", "level": "INFO", "logger": "alpha_assets.intake", "message": "...",
     ...every ``extra=`` field of the call...}

``ALPHA_LOG_LEVEL`` (default INFO) sets the root level. Unset or ``text``: nothing is changed (the default
behaviour). Applied by ``alpha`` (``cli.main``) and by the API at its startup (``serving/metrics.install_metrics``,
after uvicorn configured its own loggers). Dagster's run logs are Dagster's: its built-in ``json_console_logger``
does the same for them (run config ``loggers: {json_console: {config: {log_level: INFO}}}``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

LOG_FORMAT_ENV = "ALPHA_LOG_FORMAT"
LOG_LEVEL_ENV = "ALPHA_LOG_LEVEL"
FORMATS = ("text", "json")
# uvicorn's loggers do not propagate to the root: their handlers are replaced instead
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")
_RESERVED = set(logging.LogRecord("x", logging.INFO, "x", 0, "x", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_UVICORN_ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601, UTC offset), level, logger, message, the record's extra fields,
    and ``exc_info`` (the formatted traceback) when there is one. Values JSON cannot hold are written as text."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            out.update(zip(_UVICORN_ACCESS_FIELDS, record.args, strict=True))
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def log_format(value: str | None = None) -> str:
    """``value`` or ``ALPHA_LOG_FORMAT``, checked: 'text' (also when unset) or 'json'."""
    fmt = (value if value is not None else os.environ.get(LOG_FORMAT_ENV, "")).strip().lower() or "text"
    if fmt not in FORMATS:
        raise ValueError(f"{LOG_FORMAT_ENV}={fmt!r}: give one of {', '.join(FORMATS)}")
    return fmt


def configure_logging(fmt: str | None = None, level: str | None = None, stream: TextIO | None = None) -> bool:
    """Install the JSON handler on the root logger and uvicorn's loggers when the format is 'json' (returns True);
    'text' changes nothing (returns False). Idempotent: a second call replaces the handler it installed before."""
    if log_format(fmt) != "json":
        return False
    level_name = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").strip().upper()
    if not isinstance(logging.getLevelName(level_name), int):
        raise ValueError(f"{LOG_LEVEL_ENV}={level_name!r}: give DEBUG, INFO, WARNING, ERROR or CRITICAL")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._alpha_json = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_alpha_json", False) or _is_plain_stderr(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_name)
    for name in UVICORN_LOGGERS:
        lg = logging.getLogger(name)
        if lg.handlers or name == "uvicorn.access":
            lg.handlers = [handler]
            lg.propagate = False
    return True


def _is_plain_stderr(h: logging.Handler) -> bool:
    """A handler ``logging.basicConfig`` put on the root (stderr, default formatter): replaced, not doubled."""
    return type(h) is logging.StreamHandler and getattr(h, "stream", None) is sys.stderr
