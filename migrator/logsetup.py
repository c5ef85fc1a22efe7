"""Logging for every command: timestamps on every line, text or JSON, stderr and/or a file.

    migrator --log-file run.log --log-format json copy PLAN

Each line carries an ISO-8601 UTC timestamp, the level and the logger. In JSON (one object a
line) extra fields given with `extra={"fields": {...}}` are merged into the object, so progress
lines (`migrator.progress`) carry rows, rows/s, ETA and lag as numbers a machine can read.
Progress lines are logged at INFO on their own logger, which stays at INFO whatever -v says.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

PROGRESS_LOGGER = "migrator.progress"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OURS = "_migrator_handler"


class UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        t = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{t}.{int(record.msecs):03d}Z"


class JsonFormatter(UtcFormatter):
    """One JSON object a line: ts, level, logger, msg, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": self.formatTime(record), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


def make_formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else UtcFormatter(TEXT_FORMAT)


def setup_logging(verbose: int = 0, log_file: Path | None = None, log_format: str = "text",
                  stream: Any = None) -> None:
    """(Re)configure the root logger: our handlers replace the ones a previous call installed."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(h)
        h.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream) if stream is not None else StderrHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(make_formatter(log_format))
        setattr(h, _OURS, True)
        root.addHandler(h)
    root.setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))
    logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)


def progress_log(message: str, **fields: Any) -> None:
    """One progress line (text: the message; JSON: the message plus the fields)."""
    logging.getLogger(PROGRESS_LOGGER).info(message, extra={"fields": {"event": "progress", **fields}})
