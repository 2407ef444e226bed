"""What every atheris harness shares: the reason codes a parser may raise, and the libFuzzer entry point."""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris  # type: ignore[import-untyped]

from pipelines.errors import PipelineError
from pipelines.reasons import ReasonCode
from service.certification.errors import ServiceError

MEDIA_CODES = {
    ReasonCode.MEDIA_CORRUPT,
    ReasonCode.MEDIA_UNSUPPORTED,
    ReasonCode.MEDIA_TOO_LARGE,
    ReasonCode.VIDEO_TOO_SHORT,
    ReasonCode.VIDEO_TOO_LONG,
    ReasonCode.VIDEO_FRAME_RATE_TOO_HIGH,
}
# The service's refusals of a whole roster file (the HTTP layer answers them 415 / 422 / 413); a row's problems are
# returned as row errors, never raised.
ROSTER_CODES = {"ROSTER_FORMAT", "ROSTER_TOO_LARGE"}


def expect_media_error(exc: PipelineError) -> None:
    """Re-raise (libFuzzer then saves the input as a crash) unless it is a documented media refusal."""
    if exc.reason not in MEDIA_CODES:
        raise exc


def expect_roster_error(exc: ServiceError) -> None:
    if exc.code not in ROSTER_CODES:
        raise exc


def main(test_one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
