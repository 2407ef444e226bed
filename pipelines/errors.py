"""Exceptions raised by pipelines: each carries one reason code."""

from __future__ import annotations

from pipelines.reasons import ReasonCode


class PipelineError(Exception):
    """Input that a stage cannot process, with the reason code to report."""

    def __init__(self, reason: ReasonCode, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


class MediaError(PipelineError):
    """Unreadable, unsupported, oversized or corrupt media."""
