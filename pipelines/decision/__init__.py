"""Decision stage: ID card + liveness + face match(es) → accept / review / reject with reasons and scores."""

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.rules import DecisionConfig, Evidence, decide

__all__ = ["Decision", "DecisionConfig", "Evidence", "Outcome", "decide"]
