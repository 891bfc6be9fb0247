"""Logging for the operator: readable text by default, JSON lines for log pipelines.

`--log-format json` emits one JSON object per line with time, level, logger and
message (and the exception, if any). Credentials never reach these lines: the
adapters redact them before logging.

An error the controller handles (a failed pass, an API server that said no) is one line at
WARNING naming its cause (:func:`describe`); its traceback is logged at DEBUG only
(``--log-level debug``), so a problem that repeats every interval never floods the log.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from canary.timestamps import format_micro


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": format_micro(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def describe(exc: BaseException) -> str:
    """An exception as one log line: its type and its message, line breaks folded."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("kopf").setLevel(max(logging.INFO, root.level))
    # kopf logs every watch event a handler processed; our own Events say what matters.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
