"""Service exceptions: each carries a code (a ReasonCode where one fits), a detail and, for some, extra fields;
never an HTTP status. ``service.adapters.http.errors`` holds the one map from error (kind, code) to HTTP status and
turns them into 4xx JSON in one place; the CLI maps them to its exit codes (``service.adapters.cli.common``).

A few codes name a rule that can be broken in more than one way (ROSTER_FORMAT: a damaged file or a wrong file
type); the subclasses below say which kind of failure it was, so the adapters can answer each kind its own way.
"""

from __future__ import annotations

from typing import Any

# The messages live in the one catalog.
from service.certification.catalog import message_zh

__all__ = [
    "InvalidInputError",
    "LockedError",
    "NotFoundError",
    "ServiceError",
    "UnsupportedFormatError",
]


class ServiceError(Exception):
    def __init__(self, code: str, detail: str = "", extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.extra = extra or {}

    @property
    def message_zh(self) -> str:
        """What the citizen reads (service.certification.catalog)."""
        return message_zh(self.code)


# Kinds of failure whose answer does not depend on the code: an error raised as one of these is answered the
# same way whatever its code says about which rule was broken.
class NotFoundError(ServiceError):
    """What the request names does not exist (or is not the caller's to see)."""

    def __init__(self, what: str, code: str = "NOT_FOUND", detail: str | None = None) -> None:
        super().__init__(code, f"{what} not found" if detail is None else detail)


class InvalidInputError(ServiceError):
    """A value the caller gave is not acceptable (a field, a parameter, the content of a file)."""


class UnsupportedFormatError(ServiceError):
    """The caller sent a kind of file the service does not read at all (not a damaged one)."""


class LockedError(ServiceError):
    """Refused until someone unlocks it (staff review), not until a time passes."""
