"""Bindings of relatives (operators) to elderly beneficiaries: relationship, consent, limits, history."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipelines.reasons import ReasonCode
from proxy_auth.errors import ProxyAuthError
from proxy_auth.policy import ProxyPolicy


class Relationship(enum.StrEnum):
    SPOUSE = "spouse"
    CHILD = "child"
    CHILD_IN_LAW = "child_in_law"
    GRANDCHILD = "grandchild"
    SIBLING = "sibling"
    OTHER = "other"


class ConsentMethod(enum.StrEnum):
    LIVE_VIDEO = "live_video"  # the elder, live, with a spoken or on-screen consent step
    STAFF_APPROVAL = "staff_approval"  # approved by bureau staff (e.g. at the counter or a home visit)


@dataclass(frozen=True)
class Consent:
    method: ConsentMethod
    recorded_at: dt.datetime
    evidence_ref: str  # session id of the consent video, or the approving staff member's id


@dataclass(frozen=True)
class Binding:
    relative_id: str
    elder_id: str
    relationship: Relationship
    created_at: dt.datetime
    consent: Consent | None
    ended_at: dt.datetime | None = None
    locked: bool = False
    failures: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None


def check_new_binding(
    relative_id: str,
    elder_id: str,
    relative_history: Sequence[Binding],
    elder_bindings: Sequence[Binding],
    policy: ProxyPolicy,
) -> None:
    """Raise PROXY_LIMIT_REACHED if binding `elder_id` to `relative_id` would break a limit.

    `relative_history` is every binding the relative ever had (ended ones included); `elder_bindings` is every
    binding of the elder.
    """
    if relative_id == elder_id:
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, "a person cannot be their own proxy")
    if any(b.active and b.elder_id == elder_id for b in relative_history):
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, "already bound to this elder")
    active = sum(1 for b in relative_history if b.active)
    limit = policy.max_active_bindings_per_relative
    if active >= limit:
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, f"{active} active bindings (at most {limit})")
    # Every binding counts, re-bindings included: binding and unbinding in turns must not reset the history.
    lifetime_limit = policy.max_lifetime_bindings_per_relative
    if len(relative_history) >= lifetime_limit:
        raise ProxyAuthError(
            ReasonCode.PROXY_LIMIT_REACHED,
            f"{len(relative_history)} bindings in this relative's history (at most {lifetime_limit})",
        )
    relatives = {b.relative_id for b in elder_bindings if b.active}
    if len(relatives) >= policy.max_relatives_per_elder:
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, f"elder already has {len(relatives)} relatives bound")


def needs_consent(elder_bindings: Sequence[Binding]) -> bool:
    """The elder's consent is captured at their first binding; later bindings reuse the recorded consent."""
    return not any(b.consent is not None for b in elder_bindings)


def record_failure(binding: Binding, policy: ProxyPolicy) -> Binding:
    """Count a failed proxy certification; repeated failures lock the binding pending staff review."""
    failures = binding.failures + 1
    return replace(binding, failures=failures, locked=binding.locked or failures >= policy.failures_before_lock)


def require_usable(binding: Binding | None) -> Binding:
    if binding is None or not binding.active:
        raise ProxyAuthError(ReasonCode.PROXY_NOT_BOUND, "no active binding to this elder")
    if binding.locked:
        raise ProxyAuthError(ReasonCode.ATTEMPTS_EXCEEDED, "binding locked after repeated failures; staff review")
    return binding
