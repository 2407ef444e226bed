"""Typed result of the decision stage."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pipelines.reasons import ReasonCode


class Outcome(enum.StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"


@dataclass(frozen=True)
class Decision:
    """accept / review / reject, why, and every score, threshold and model version it rests on."""

    outcome: Outcome
    reasons: list[ReasonCode]
    scores: dict[str, float | None]
    thresholds: dict[str, Any]
    model_versions: dict[str, str]
    references: list[str] = field(default_factory=list)  # which references matched: "card", "template"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.outcome.value,
            "reasons": [r.value for r in self.reasons],
            "messages": [r.message_zh for r in self.reasons],
            "scores": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.scores.items()},
            "thresholds": self.thresholds,
            "model_versions": self.model_versions,
            "references": self.references,
            "notes": self.notes,
        }
