"""Exceptions of proxy certification: each carries one reason code."""

from __future__ import annotations

from pipelines.reasons import ReasonCode


class ProxyAuthError(Exception):
    """A proxy rule forbids the requested action."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
