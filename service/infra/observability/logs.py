"""Structured logs: one JSON object per line (``PENSION_CERT_LOG_FORMAT=json``), with the request id and the
session id of the request or job that logged it. ID numbers are masked in the message and the traceback."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

from service.infra.observability.context import current_request_id, current_session_id


class ContextFilter(logging.Filter):
    """Stamps request_id / session_id on every record (text format can use them too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "session_id", None) is None:
            record.session_id = current_session_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from service.infra.security import mask_text  # the same masking as the text logs (security imports us)

        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "session_id": getattr(record, "session_id", None) or current_session_id(),
        }
        if record.exc_info:
            out["exc"] = mask_text(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = mask_text(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


def log_format(explicit: str | None = None) -> str:
    return explicit or os.environ.get("PENSION_CERT_LOG_FORMAT", "text")


def configure_logging(fmt: str | None = None) -> None:
    """Put the context filter (and, for json, the JSON formatter) on every handler in the process: the root
    handler of the CLI, uvicorn's and celery's own handlers."""
    as_json = log_format(fmt) == "json"
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, ContextFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())
            if as_json and not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter())
