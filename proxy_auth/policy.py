"""Configurable limits and thresholds of proxy certification (代认证).

Every rule is designed so that a relative can help an elderly beneficiary certify, but never replace them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProxyPolicy:
    max_active_bindings_per_relative: int = 5
    max_lifetime_bindings_per_relative: int = 8
    max_relatives_per_elder: int = 2
    # A proxy session must clear the self-service accept threshold by this cosine margin to be accepted.
    accept_margin: float = 0.05
    # The elder's face must not be the operator's: at or above the recognizer's FAR 1e-4 (accept) threshold the
    # session is rejected and flagged; at or above its FAR 1e-2 (review) threshold a person looks at it.
    operator_reject_far: str = "1e-4"
    operator_review_far: str = "1e-2"
    first_proxy_certification_to_review: bool = True
    failures_before_lock: int = 3
    # A binding the elder has not consented to within this many days expires (the daily upkeep ends it; a consent
    # given later is refused): a stranger who knew the elder's name and number leaves nothing behind.
    pending_consent_days: int = 14
