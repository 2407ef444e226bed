"""The kinship rule: the face in the video must be closer to the claimed person than to any of their relatives.

The fraud that matters is a relative presenting a dead parent's card (冒领). Family members resemble each
other, so the relative's face can land in the accept band against the parent's card photo; but it lands even
closer to the relative's own enrolled template. When the pooled probe is at least as close to a relative
(within a margin) as to the claimed references, a person decides. This applies to every session, self-service
and proxy alike; the proxy operator check (`check_operator`) stays the stricter rule for the operator's face.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipelines.decision.result import Decision, Outcome
from pipelines.face_match import FaceObservation, cosine
from pipelines.face_match.pooling import pooled_embedding
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

# (label, embedding): a relative's enrolled template, labelled without personal data beyond what the decision
# JSON already holds (e.g. "proxy_operator:<operator id>", "household:<external id>").
RelativeTemplate = tuple[str, np.ndarray]

CLAIMED_SCORES = ("card_similarity", "template_similarity")


@dataclass(frozen=True)
class RelativePolicy:
    # A relative scoring at or above (claimed similarity − margin) sends the session to review. A positive
    # margin also catches relatives slightly below the claimed score. Measured in docs/face_data.md (FIW
    # East-Asian families): at 0.10 at most 1 % of accept-band genuine trials go to review, for both packs;
    # catching relatives did not improve beyond 0.05.
    margin: float = 0.10


@dataclass(frozen=True)
class RelativeMatch:
    """The relative closest to the face in the video."""

    label: str
    similarity: float


def closest_relative(probe: np.ndarray, relatives: Sequence[RelativeTemplate]) -> RelativeMatch | None:
    scored = [RelativeMatch(label, cosine(probe, emb)) for label, emb in relatives]
    return max(scored, key=lambda m: m.similarity, default=None)


def claimed_similarity(decision: Decision) -> float | None:
    """The best similarity to the claimed person's references (card portrait, enrolled template)."""
    values = [v for k, v in decision.scores.items() if k in CLAIMED_SCORES and v is not None]
    return max(values, default=None)


def apply_relative_rule(
    decision: Decision,
    probes: Sequence[FaceObservation],
    relatives: Sequence[RelativeTemplate],
    policy: RelativePolicy,
) -> Decision:
    """At least review (never accept; a reject stays a reject) when the face is as close to a relative as to the
    claimed person. Without probes or relatives the decision is returned unchanged."""
    # Pooled as FaceMatcher.compare pools, so the relative's score and the claimed score use one embedding.
    probe = pooled_embedding(probes) if probes else None
    closest = closest_relative(probe, relatives) if probe is not None else None
    if closest is None:
        return decision
    scores = dict(decision.scores) | {"relative_max_similarity": closest.similarity}
    thresholds = dict(decision.thresholds) | {"relative_margin": policy.margin}
    claimed = claimed_similarity(decision)
    if claimed is None or closest.similarity < claimed - policy.margin:
        # No claimed score: the face was never matched, so the decision already is no accept.
        return replace(decision, scores=scores, thresholds=thresholds)
    log.info("face closer to relative %s: %.3f vs claimed %.3f", closest.label, closest.similarity, claimed)
    outcome = decision.outcome if decision.outcome is Outcome.REJECT else Outcome.REVIEW
    return replace(
        decision,
        outcome=outcome,
        reasons=list(dict.fromkeys([*decision.reasons, ReasonCode.FACE_CLOSER_TO_RELATIVE])),
        scores=scores,
        thresholds=thresholds,
        notes=[
            *decision.notes,
            f"face closer to relative {closest.label}: {closest.similarity:.3f} vs claimed {claimed:.3f}",
        ],
    )
