"""Logging for every process: ID numbers masked in every record (MaskingFilter on every handler, whoever
logged), and structured logs, one JSON object per line (``PENSION_CERT_LOG_FORMAT=json``), with the request id
and the session id of the request or job that logged it. ID numbers are masked in the message and the traceback.
The masking rule itself (``mask_text``) is service/infra/security.py's."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from service.infra.config import early_log_format
from service.infra.observability.context import current_request_id, current_session_id
from service.infra.security import mask_text


def _context_id(record: logging.LogRecord, name: str, current: Callable[[], str | None]) -> str | None:
    """The record's request or session id (its own, else the context's), masked: both can come as the client
    sent them (the X-Request-ID header, the path's ``{session_id}``, whatever was typed there)."""
    value = getattr(record, name, None) or current()
    return mask_text(str(value)) if value else None


class ContextFilter(logging.Filter):
    """Stamps request_id / session_id on every record (text format can use them too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _context_id(record, "request_id", current_request_id)
        record.session_id = _context_id(record, "session_id", current_session_id)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
            "request_id": _context_id(record, "request_id", current_request_id),
            "session_id": _context_id(record, "session_id", current_session_id),
        }
        if record.exc_info:
            out["exc"] = mask_text(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = mask_text(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


def log_format(explicit: str | None = None) -> str:
    return explicit or early_log_format()


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


def _mask_arg(arg: object) -> object:
    """One %-style argument with its ID numbers masked. A string stays a string; anything else stays itself
    (an int still formats with %d) unless its text shows a number, then it becomes that text masked."""
    if isinstance(arg, str):
        return mask_text(arg)
    if arg is None or isinstance(arg, bool | float):
        return arg
    try:
        text = str(arg)
    except Exception:  # an argument that cannot print itself: logging reports it as before
        return arg
    masked = mask_text(text)
    return arg if masked == text else masked


class MaskingFilter(logging.Filter):
    """Masks every ID number (``mask_text``: 18 characters, or a valid 15-digit one) in a log record, whoever
    logged it, before any formatter runs.

    The message template and each %-style argument are masked in place, so a record keeps its shape:
    uvicorn's access formatter unpacks ``record.args`` as ``(client, method, path, version, status)`` itself,
    and a path carrying an ID number used to leave it ``None``, which lost the line to a logging traceback.
    If the formatted message still shows a number (one split across arguments, an int formatted with %d),
    the record becomes that message masked, with no arguments. Tracebacks and stack text are masked too.
    Never raises: a record logging cannot format is left for logging's own error report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        with contextlib.suppress(Exception):  # a log filter must never take the line (or the caller) down
            self._mask(record)
        return True

    @staticmethod
    def _mask(record: logging.LogRecord) -> None:
        try:
            original: str | None = record.getMessage()
        except Exception:  # the caller's own formatting bug: logging reports it, as before
            original = None
        if isinstance(record.msg, str):
            record.msg = mask_text(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_mask_arg(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _mask_arg(v) for k, v in args.items()}
        try:
            message: str | None = record.getMessage()
        except Exception:  # e.g. %d given the masked text of an int ID number
            message = None
        if original is not None and (message is None or mask_text(message) != message):
            record.msg, record.args = mask_text(original), ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set: the text handler then prints the masked traceback.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)


def install_log_masking(log_format: str | None = None) -> None:
    """Add the masking filter to every handler in the process (uvicorn's access log has its own handler and
    would otherwise print `?id_number=…` query strings in clear); with ``PENSION_CERT_LOG_FORMAT=json`` also
    the JSON formatter (which masks the message and traceback too) and the request/session id filter."""
    configure_logging(log_format)
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())
