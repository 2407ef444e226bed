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
    flagged: bool = False  # the relative filmed themselves in a proxy session of this binding
    withdrawn: bool = False  # the elder ended it: their consent to the relative withdrawn (PIPL art. 15)

    @property
    def active(self) -> bool:
        return self.ended_at is None


def check_new_binding(
    relative_id: str,
    elder_id: str,
    relative_history: Sequence[Binding],
    elder_bindings: Sequence[Binding],
    policy: ProxyPolicy,
    account_history: Sequence[Binding] | None = None,
) -> None:
    """Raise PROXY_LIMIT_REACHED if binding `elder_id` to `relative_id` would break a limit.

    `relative_history` is every binding the relative (a person, over all their accounts) ever had (ended ones
    included); `elder_bindings` is every binding of the elder. `account_history`, when the binding is made from
    one of several accounts of the person: that account's bindings (default: `relative_history`). Only a live
    binding of the elder from the same account refuses another: the person's new account (a lost phone) may bind
    the elder again, with the elder's consent again (`needs_consent` per account); the service then moves the
    person's live binding of the elder to the new account, and leaves it out of both lists, then and once moved
    (one relationship, counted once)."""
    if relative_id == elder_id:
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, "a person cannot be their own proxy")
    same_account = relative_history if account_history is None else account_history
    if any(b.active and b.elder_id == elder_id for b in same_account):
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
    check_relative_slot(relative_id, elder_bindings, policy)


def check_relative_slot(relative_id: str, elder_bindings: Sequence[Binding], policy: ProxyPolicy) -> None:
    """Raise PROXY_LIMIT_REACHED if the elder already has as many other relatives as allowed.

    Only relatives the elder consented to take a slot: a binding waiting for consent can do nothing, so it must
    not let a stranger who knows the elder's name and number keep a real child out. The slot is checked again
    when the consent is given (a second relative may have been consented to meanwhile)."""
    relatives = {
        b.relative_id for b in elder_bindings if b.active and b.consent is not None and b.relative_id != relative_id
    }
    if len(relatives) >= policy.max_relatives_per_elder:
        raise ProxyAuthError(ReasonCode.PROXY_LIMIT_REACHED, f"elder already has {len(relatives)} relatives bound")


def needs_consent(relative_id: str, elder_bindings: Sequence[Binding], withdrawn_at: dt.datetime | None = None) -> bool:
    """Whether a new binding of `relative_id` to the elder needs the elder's own consent (`reusable_consent`)."""
    return reusable_consent(relative_id, elder_bindings, withdrawn_at) is None


def reusable_consent(
    relative_id: str, elder_bindings: Sequence[Binding], withdrawn_at: dt.datetime | None = None
) -> Consent | None:
    """The elder's consent a new binding of `relative_id` reuses (the latest), or None: it needs the elder's own.

    The elder consents to one relative, not to whoever knows their name and ID number: only the same relative's
    earlier consented binding of this elder is reused, and never once a binding of the pair was flagged (the
    relative filmed themselves instead of the elder), so unbinding cannot launder a flagged binding; nor a consent
    given before `withdrawn_at`, when the elder last ended a binding of this relative (`Carried.withdrawn_at`):
    the elder withdrew it, and binding again must not bring it back."""
    pair = [b for b in elder_bindings if b.relative_id == relative_id]
    if any(b.flagged for b in pair):
        return None
    given = [
        b.consent
        for b in pair
        if b.consent is not None and (withdrawn_at is None or b.consent.recorded_at > withdrawn_at)
    ]
    return max(given, key=lambda c: c.recorded_at, default=None)


@dataclass(frozen=True)
class Carried:
    """What a re-binding of the same relative and elder keeps from the pair's earlier bindings."""

    failures: int = 0
    locked: bool = False
    flagged: bool = False
    # When the elder last ended a binding of the pair (withdrew consent): no consent given before it is reused.
    withdrawn_at: dt.datetime | None = None


def carried_over(relative_id: str, elder_bindings: Sequence[Binding]) -> Carried:
    """The pair's record carried into a new binding: unbinding and binding again must not clear a lock, a flag
    or the failure count (only staff do that, by unlocking). Failures and the lock come from the pair's latest
    binding (where staff unlock and an accepted certification reset them); a flag on any of them stays, as it
    stays on a binding that staff unlock. The elder's withdrawal of consent (an end by the elder) stays too: a
    relative is a person, so it holds over all their accounts."""
    pair = sorted((b for b in elder_bindings if b.relative_id == relative_id), key=lambda b: b.created_at)
    if not pair:
        return Carried()
    return Carried(
        failures=pair[-1].failures,
        locked=pair[-1].locked,
        flagged=any(b.flagged for b in pair),
        withdrawn_at=max((b.ended_at for b in pair if b.withdrawn and b.ended_at), default=None),
    )


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
