"""Logs on stderr: one JSON object per line for machines, or readable lines for a person.

``--log-format`` chooses (a field of every service's settings): ``json`` (one object per line:
``ts``, ``level``, ``logger``, ``event`` and the event's fields), ``console`` (``time level
service event key=value``, coloured when the stream is a terminal), or ``auto``, the default:
console when stderr is a terminal, JSON otherwise (containers, files, pipes). Colour follows the
usual conventions: ``NO_COLOR`` (any value) turns it off, ``FORCE_COLOR`` (any value but empty
or ``0``) turns it on when stderr is not a terminal, as under ``make run``, which relays each
service's lines with the service's name in front.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, TextIO

__all__ = [
    "LOG_FORMATS",
    "ConsoleFormatter",
    "configure_json_logging",
    "configure_logging",
    "log_event",
    "resolve_log_format",
]

LOG_FORMATS = ("auto", "json", "console")

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_LEVEL_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_KEY_COLOUR = "\x1b[36m"


def _utc_stamp(record: logging.LogRecord) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z"
    )


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _utc_stamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def _console_value(value: Any) -> str:
    """A field's value as ``key=value`` shows it: bare when it is one plain word, else quoted."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text.startswith(("{", "[")):
        try:
            # A field that already holds JSON (the ingestor's config) reads better unescaped.
            return json.dumps(json.loads(text), separators=(",", ":"), default=str)
        except ValueError:
            pass
    if text and not any(c.isspace() or c in "\"'=" for c in text):
        return text
    return json.dumps(text)


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS.mmm LEVEL service event key=value ...`` in local time, for a person.

    ``service`` is the process's name (``writer``); a logger of another component shows after a
    slash (``writer/wal`` for ``stemedb.wal``). An event that starts with the name just shown
    drops it, so the line does not say it twice (``writer started`` shows as ``INFO writer
    started``, not ``INFO writer writer started``; the JSON line keeps the event whole).
    ``colour`` adds ANSI colours."""

    def __init__(self, service: str = "", colour: bool = False) -> None:
        super().__init__()
        self._service = service
        self._colour = colour

    def _source(self, logger_name: str) -> str:
        component = logger_name.removeprefix("stemedb.").split(".")[0]
        if not self._service:
            return component
        if component in ("", "root", self._service):
            return self._service
        return f"{self._service}/{component}"

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self._colour else text

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        clock += f".{int(record.msecs):03d}"
        level = record.levelname
        source = self._source(record.name)
        event = record.getMessage()
        name = source.rpartition("/")[2]
        if name and event.startswith(name + " ") and event[len(name) + 1 :].strip():
            event = event[len(name) + 1 :]
        parts = [
            self._paint(_DIM, clock),
            self._paint(_LEVEL_COLOURS.get(level, ""), f"{level:<5}"),
            self._paint(_BOLD, source),
            event,
        ]
        for key, value in _fields(record).items():
            parts.append(self._paint(_KEY_COLOUR, f"{key}=") + _console_value(value))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _wants_colour(stream: TextIO) -> bool:
    if "NO_COLOR" in os.environ:
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    return _is_terminal(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def resolve_log_format(log_format: str, stream: TextIO) -> str:
    """``json`` or ``console``: what ``auto`` means for ``stream``; ValueError names the flag."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"--log-format: {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    if log_format == "auto":
        return "console" if _is_terminal(stream) else "json"
    return log_format


def configure_logging(
    level: str = "INFO", log_format: str = "auto", service: str = "", stream: TextIO | None = None
) -> str:
    """Route the root logger to ``stream`` (stderr) in ``log_format``; return the format used."""
    out = sys.stderr if stream is None else stream
    chosen = resolve_log_format(log_format, out)
    handler = logging.StreamHandler(out)
    if chosen == "console":
        handler.setFormatter(ConsoleFormatter(service, _wants_colour(out)))
    else:
        handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return chosen


def configure_json_logging(level: str = "INFO") -> None:
    """Route the root logger to stderr as JSON lines."""
    configure_logging(level, "json")


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with structured ``fields`` (keys of the JSON line, ``key=value`` on a
    console)."""
    logger.log(level, event, extra={"fields": fields})
