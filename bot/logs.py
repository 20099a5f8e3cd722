"""Logging for the bot: one request id per incoming message, on every log line that message causes.

``new_request()`` starts a request (a Discord message, a console line) and
returns its id. The id lives in a ``ContextVar``, so it follows the message
through every ``await`` and every task started from it (discord.py runs each
event in a task of its own, so two messages never share one), including the
memory library's log lines. The chat handler stores it in the exchange's
metadata (``request_id``) and logs it with the exchange id.

``configure_logging`` installs one stderr handler whose ``RequestIdFilter`` sets
``record.request_id`` ("-" outside a request), as text or one JSON object per line.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from typing import Literal

REQUEST_ID: ContextVar[str | None] = ContextVar("mnemo_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# fields a log call may pass with extra={...}; the JSON formatter keeps them
EXTRA_FIELDS = ("user_id", "guild_id", "channel_id", "message_id", "exchange_id", "kind")


def new_request() -> str:
    """Start a request in the current context; returns its id (12 hex digits)."""
    request_id = uuid.uuid4().hex[:12]
    REQUEST_ID.set(request_id)
    return request_id


def current_request() -> str:
    """The current request's id, starting a request when there is none."""
    return REQUEST_ID.get() or new_request()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, extra fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": self.formatTime(record), "level": record.levelname, "logger": record.name,
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get() or "-",
            "message": record.getMessage()}
        out.update({k: getattr(record, k) for k in EXTRA_FIELDS if hasattr(record, k)})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str = "WARNING", fmt: Literal["text", "json"] = "text") -> logging.Handler:
    """Send every logger's records to stderr with their request id; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    return handler
