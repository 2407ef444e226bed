"""The session's decision column has one vocabulary: the pipelines' Outcome plus the staff's "retry"."""

from __future__ import annotations

from pipelines.decision.result import Outcome
from service.certification.models import SessionDecision
from service.features.console.labels import DECISION_ZH
from service.features.wechat.messages import OUTCOME


def test_machine_outcomes_are_stored_with_the_same_values() -> None:
    for outcome in Outcome:
        assert SessionDecision(outcome.value) == outcome.value
    assert [d.value for d in SessionDecision] == ["accept", "review", "reject", "retry"]


def test_every_decision_has_a_label_and_a_notice() -> None:
    assert set(SessionDecision) <= set(DECISION_ZH)
    assert DECISION_ZH["accept"] == "通过" and DECISION_ZH[None] == "—"  # pages look up the stored string
    for kind, outcomes in OUTCOME.items():
        assert set(outcomes) == {SessionDecision.ACCEPT, SessionDecision.REJECT, SessionDecision.RETRY}, kind
        assert outcomes["retry"] == outcomes[SessionDecision.RETRY]
