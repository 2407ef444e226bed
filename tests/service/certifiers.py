"""A Certifier without models, for tests of the certification core and the features: it decides every session
with a fixed outcome, counts its runs and records the ID number it was asked to expect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.runner import CertificationReport, Template
from pipelines.reasons import ReasonCode


def fixed_decision(outcome: Outcome) -> Decision:
    """The machine's decision FixedCertifier returns: a reject names a face mismatch, the others no reason."""
    reasons = [ReasonCode.FACE_MISMATCH] if outcome is Outcome.REJECT else []
    return Decision(outcome, reasons, {"card_similarity": 0.9}, {}, {})


@dataclass
class FixedCertifier:
    outcome: Outcome = Outcome.ACCEPT
    runs: int = 0
    expected: list[str | None] = field(default_factory=list)

    def run(
        self,
        card: bytes | np.ndarray,
        video: bytes | Path,
        actions: object,
        expected_id_number: str | None = None,
        template: Template | None = None,
        fingerprints: object = None,
        today: object = None,
    ) -> CertificationReport:
        self.runs += 1
        self.expected.append(expected_id_number)
        return CertificationReport(fixed_decision(self.outcome), None, None, None, None, None, {})
