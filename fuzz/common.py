"""Hypothesis settings for the fuzz tests: a short, derandomized run by default, a long one on request.

``PENSION_CERT_FUZZ_LONG=1`` switches every fuzz test (hypothesis and schemathesis) to its long profile.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("PENSION_CERT_FUZZ_LONG") == "1"


def fuzz_settings(short: int, long: int) -> settings:
    """`short` examples in the default run (same inputs every time), `long` random ones in the long run."""
    return settings(
        max_examples=long if LONG else short,
        derandomize=not LONG,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
