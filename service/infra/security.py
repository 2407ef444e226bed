"""Keys in use: ID numbers encrypted (AES-GCM) and searchable by keyed hash; tokens; masking for logs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# Not inside a longer run of letters or digits (a hash, a token), except right after a %XX escape: in an access
# log's path or query an ID number follows `%3D`, `%20`, `%2F` as often as `=` or `/`.
ID_PATTERN = re.compile(r"(?:(?<![0-9A-Za-z])|(?<=%[0-9A-Fa-f]{2}))(\d{4})(\d{10})(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_id(id_number: str) -> str:
    """3701**********1234: enough for a person to recognise, useless to anyone else."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_text(text: str) -> str:
    return ID_PATTERN.sub(lambda m: m.group(1) + "*" * 10 + m.group(3), text)


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
    """Masks every 18-character ID number in a log record, whoever logged it, before any formatter runs.

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
    from service.infra.observability.logs import configure_logging

    configure_logging(log_format)
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())


def normalise_id(id_number: str) -> str:
    return id_number.strip().upper()


class Keyring:
    """Field encryption and keyed hashes, from the settings' keys."""

    def __init__(self, data_key: bytes, signing_key: str) -> None:
        self._aead = AESGCM(data_key)
        self._hmac_key = hashlib.sha256(b"pension-cert/hmac/" + signing_key.encode()).digest()

    def id_hash(self, id_number: str) -> str:
        return self.mac("id:" + normalise_id(id_number))

    def mac(self, text: str) -> str:
        return hmac.new(self._hmac_key, text.encode(), hashlib.sha256).hexdigest()

    def verify_mac(self, text: str, mac: str) -> bool:
        # Bytes: compare_digest raises TypeError on non-ASCII str, and a hostile value must be a refusal, not a 500.
        return hmac.compare_digest(self.mac(text).encode(), mac.encode())

    def encrypt_field(self, value: str, context: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, value.encode(), context.encode())
        return base64.b64encode(nonce + ct).decode()

    def decrypt_field(self, token: str, context: str) -> str:
        raw = base64.b64decode(token)
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
