"""The stricter policy of proxy sessions, applied on top of the ordinary certification decision.

- the elder's face must not be the operating relative's own face (a relative filming themselves is rejected and
  flagged);
- a higher accept threshold;
- the first proxy certification of an elder always goes to staff review;
- deceased beneficiaries can never be certified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipelines.decision.result import Decision, Outcome
from pipelines.face_match import FaceMatcher, FaceObservation, cosine
from pipelines.face_match.pooling import pool_embeddings
from pipelines.reasons import ReasonCode
from proxy_auth.policy import ProxyPolicy

FLAG_OPERATOR_FACE = "flag:operator_face"
# Notes (no reason code) that send a proxy session to staff because its face is in doubt: the relative's own face
# cannot be ruled out, or the likeness to the elder is below the proxy line (service/certification/review.py
# asks a second person for such an accept).
NOTE_NO_OPERATOR_TEMPLATE = "operator template unavailable"
NOTE_BELOW_PROXY_LINE = "face similarity below the stricter proxy threshold"


@dataclass(frozen=True)
class OperatorCheck:
    """Similarity of the face in the elder's video to the operating relative's enrolled template."""

    similarity: float
    reject_threshold: float
    review_threshold: float

    @property
    def same_person(self) -> bool:
        return self.similarity >= self.reject_threshold

    @property
    def suspicious(self) -> bool:
        return self.review_threshold <= self.similarity < self.reject_threshold


def check_operator(
    matcher: FaceMatcher, elder_probes: Sequence[FaceObservation], operator_embedding: np.ndarray, policy: ProxyPolicy
) -> OperatorCheck:
    """Compare the pooled elder frames with the operator's template, at the recognizer's calibrated thresholds."""
    if not elder_probes:
        raise ValueError("no elder face to compare with the operator")
    # Every elder frame is pooled here, without the quality mask of FaceMatcher.compare.
    pooled = pool_embeddings([p.embedding for p in elder_probes], unit=False)
    th = matcher.calibration.thresholds(
        matcher.recognizer.version, matcher.config.flip_tta, policy.operator_reject_far, policy.operator_review_far
    )
    return OperatorCheck(cosine(pooled, operator_embedding), th.accept, th.review)


@dataclass(frozen=True)
class ProxyContext:
    elder_deceased: bool
    first_proxy_certification: bool
    operator: OperatorCheck | None


def _at_least(outcome: Outcome, floor: Outcome) -> Outcome:
    order = [Outcome.ACCEPT, Outcome.REVIEW, Outcome.REJECT]
    return max(outcome, floor, key=order.index)


def apply_proxy_policy(decision: Decision, ctx: ProxyContext, policy: ProxyPolicy) -> Decision:
    outcome = decision.outcome
    reasons = list(decision.reasons)
    notes = list(decision.notes)
    scores = dict(decision.scores)
    thresholds = dict(decision.thresholds)

    if ctx.elder_deceased:
        outcome = Outcome.REJECT
        reasons.append(ReasonCode.BENEFICIARY_DECEASED)

    if ctx.operator is None:
        # Without the operator's template the elder cannot be told apart from the operator: a person decides.
        outcome = _at_least(outcome, Outcome.REVIEW)
        notes.append(NOTE_NO_OPERATOR_TEMPLATE)
    else:
        scores["operator_match"] = ctx.operator.similarity
        thresholds["operator_reject"] = ctx.operator.reject_threshold
        thresholds["operator_review"] = ctx.operator.review_threshold
        if ctx.operator.same_person:
            outcome = Outcome.REJECT
            reasons.append(ReasonCode.PROXY_OPERATOR_FACE)
            notes.append(FLAG_OPERATOR_FACE)
        elif ctx.operator.suspicious:
            outcome = _at_least(outcome, Outcome.REVIEW)
            reasons.append(ReasonCode.PROXY_OPERATOR_FACE)

    face_accept = thresholds.get("face_accept")
    if isinstance(face_accept, float):
        proxy_accept = face_accept + policy.accept_margin
        thresholds["proxy_face_accept"] = proxy_accept
        best = max(
            (s for k, s in scores.items() if k in ("card_similarity", "template_similarity") and s is not None),
            default=None,
        )
        if outcome is Outcome.ACCEPT and (best is None or best < proxy_accept):
            outcome = Outcome.REVIEW
            notes.append(NOTE_BELOW_PROXY_LINE)

    if outcome is Outcome.ACCEPT and ctx.first_proxy_certification and policy.first_proxy_certification_to_review:
        outcome = Outcome.REVIEW
        notes.append("first proxy certification of this elder: staff review")

    return replace(
        decision,
        outcome=outcome,
        reasons=list(dict.fromkeys(reasons)),
        scores=scores,
        thresholds=thresholds,
        notes=notes,
        references=decision.references if outcome is not Outcome.REJECT else [],
    )
