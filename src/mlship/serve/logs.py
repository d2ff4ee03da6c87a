"""The model server's logs: one JSON object per line on stderr, with each request's fields.

Set up by ``mlship serve`` in its own process and by every uvicorn worker it starts
(:func:`mlship.serve.factory.app_from_environment`), so both log alike.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class JsonLines(logging.Formatter):
    """One JSON object per log record, with the fields a request's log line carries."""

    FIELDS = (
        "request_id", "method", "path", "status", "latency_ms", "served_by", "event",
        "reason", "caller", "client",
    )  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        return json.dumps(line)


def json_logging(level: str) -> None:
    """Send the server's log records to stderr as JSON lines, at ``level`` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name in ("mlship.serve", "mlship.serve.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
