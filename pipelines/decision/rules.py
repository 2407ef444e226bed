"""Decision rules: combine the ID-card, liveness and face-match evidence into accept / review / reject.

Accept only when every piece agrees: the card reads and validates, its number is the beneficiary's, liveness
passed (passive and challenge), and the face matches at the accept threshold against the card portrait and/or
the enrolled template. Any hard failure rejects with its reason codes; a borderline score or conflicting
evidence sends the case to a person.

The inputs are typed structurally (protocols) so this module depends on the stages' contracts, not their code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.decision.result import Decision, Outcome
from pipelines.face_match import Band, MatchResult
from pipelines.reasons import CARD_SOFT, ReasonCode


class IdCardLike(Protocol):
    @property
    def id_number(self) -> str | None: ...
    @property
    def id_number_valid(self) -> bool: ...
    @property
    def errors(self) -> list[ReasonCode]: ...
    @property
    def expired(self) -> bool | None: ...


class LivenessLike(Protocol):
    @property
    def passed(self) -> bool: ...
    @property
    def reasons(self) -> list[ReasonCode]: ...
    @property
    def passive_score(self) -> float: ...


# CARD_SOFT (pipelines/reasons.py, where the request page's overrule reads it too): card problems that do not
# stop a decision on their own when the number still reads and validates.
# Conflicting evidence: a person decides.
CARD_REVIEW = frozenset({ReasonCode.ID_FIELDS_INCONSISTENT})


@dataclass(frozen=True)
class DecisionConfig:
    # Passive liveness scores this close above the liveness pass threshold are borderline (review). 0 by
    # default (no margin): the stage's threshold is chosen by the evaluation protocol with a stated target, and its
    # own review band lies below it. The 0.05 this used to be had no target: at the deployed point it sent 7.6 %
    # (21/276) of the clean genuine clips that pass the stage to review and no attack that passes it
    # (`decision_margin` in bench/results/liveness_eval.json, docs/liveness.md).
    passive_pass_threshold: float | None = None
    passive_review_margin: float = 0.0
    require_unexpired_card: bool = True


@dataclass
class Evidence:
    """Everything the decision looks at. Stage failures that raised instead go in `stage_errors`."""

    id_card: IdCardLike | None
    liveness: LivenessLike | None
    card_match: MatchResult | None = None
    template_match: MatchResult | None = None
    expected_id_number: str | None = None
    stage_errors: list[ReasonCode] = field(default_factory=list)
    model_versions: dict[str, str] = field(default_factory=dict)
    today: dt.date | None = None


def _unique(codes: Sequence[ReasonCode]) -> list[ReasonCode]:
    return list(dict.fromkeys(codes))


def _card(ev: Evidence, cfg: DecisionConfig) -> tuple[Outcome, list[ReasonCode]]:
    card = ev.id_card
    if card is None:
        return Outcome.REJECT, [ReasonCode.ID_NOT_A_CARD]
    errors = list(card.errors)
    if not card.id_number:
        return Outcome.REJECT, errors or [ReasonCode.ID_NUMBER_UNREADABLE]
    if not card.id_number_valid:
        return Outcome.REJECT, [*errors, ReasonCode.ID_CHECKSUM_FAILED]
    if ev.expected_id_number is not None and card.id_number.upper() != ev.expected_id_number.strip().upper():
        return Outcome.REJECT, [*errors, ReasonCode.ID_NUMBER_MISMATCH]
    if cfg.require_unexpired_card and card.expired:
        return Outcome.REJECT, [*errors, ReasonCode.ID_EXPIRED]
    hard = [e for e in errors if e not in CARD_SOFT and e not in CARD_REVIEW and e is not ReasonCode.ID_EXPIRED]
    if hard:
        return Outcome.REJECT, errors
    if any(e in CARD_REVIEW for e in errors):
        return Outcome.REVIEW, errors
    return Outcome.ACCEPT, errors


def _liveness(ev: Evidence, cfg: DecisionConfig) -> tuple[Outcome, list[ReasonCode]]:
    live = ev.liveness
    if live is None:
        return Outcome.REJECT, [ReasonCode.SPOOF_SUSPECTED]
    # The liveness stage fuses its own signals: a performed challenge with a borderline passive score is
    # its "review" verdict (a person looks at the evidence), not a rejection.
    if str(getattr(live, "verdict", "")) == "review":
        return Outcome.REVIEW, list(live.reasons) or [ReasonCode.SPOOF_SUSPECTED]
    if not live.passed:
        return Outcome.REJECT, list(live.reasons) or [ReasonCode.SPOOF_SUSPECTED]
    t = _passive_threshold(ev, cfg)
    if t is not None and live.passive_score < t + cfg.passive_review_margin:
        return Outcome.REVIEW, [ReasonCode.SPOOF_SUSPECTED]
    return Outcome.ACCEPT, []


def _passive_threshold(ev: Evidence, cfg: DecisionConfig) -> float | None:
    """The configured threshold, else the one the liveness stage used (its calibration)."""
    if cfg.passive_pass_threshold is not None:
        return cfg.passive_pass_threshold
    used = getattr(ev.liveness, "passive_threshold", None)
    return float(used) if isinstance(used, int | float) else None


def _face(ev: Evidence) -> tuple[Outcome, list[ReasonCode], list[str]]:
    """Card portrait and enrolled template. The template (last accepted selfie, with consent) is the better
    reference: the card photo may be 20 years old. So a matching template carries the accept unless the card
    flatly contradicts it, and a template that does not clearly match sends the case to a person."""
    card, tpl = ev.card_match, ev.template_match
    present = [m for m in (card, tpl) if m is not None]
    if not present:
        # Nothing to compare against: say the card's problem when its portrait had no face (the selfie's
        # FACE_NOT_FOUND would ask the citizen to face the camera).
        card_errors = ev.id_card.errors if ev.id_card is not None else []
        if ReasonCode.ID_PORTRAIT_NO_FACE in card_errors:
            return Outcome.REJECT, [ReasonCode.ID_PORTRAIT_NO_FACE], []
        return Outcome.REJECT, [ReasonCode.FACE_NOT_FOUND], []
    reasons = _unique([r for m in present for r in m.reasons])
    card_band = card.band if card is not None else None
    if tpl is None:
        return _single(card_band, reasons, ["card"])
    refs = ["template"] + (["card"] if card_band is Band.ACCEPT else [])
    if tpl.band is Band.ACCEPT:
        if card_band is Band.REJECT:
            return Outcome.REVIEW, _unique([*reasons, ReasonCode.FACE_MISMATCH]), ["template"]
        return Outcome.ACCEPT, [r for r in reasons if r is not ReasonCode.FACE_MISMATCH], refs
    if tpl.band is Band.REJECT and card_band is not Band.ACCEPT:
        return Outcome.REJECT, _unique([*reasons, ReasonCode.FACE_MISMATCH]), []
    # Borderline template, or a template that contradicts a matching card: a person decides.
    return Outcome.REVIEW, reasons, []


def _single(
    band: Band | None, reasons: list[ReasonCode], refs: list[str]
) -> tuple[Outcome, list[ReasonCode], list[str]]:
    if band is Band.ACCEPT:
        return Outcome.ACCEPT, reasons, refs
    if band is Band.REJECT:
        return Outcome.REJECT, _unique([*reasons, ReasonCode.FACE_MISMATCH]), []
    return Outcome.REVIEW, reasons, []


def decide(ev: Evidence, cfg: DecisionConfig | None = None) -> Decision:
    cfg = cfg or DecisionConfig()
    card_out, card_reasons = _card(ev, cfg)
    live_out, live_reasons = _liveness(ev, cfg)
    face_out, face_reasons, references = _face(ev)
    outcomes = [card_out, live_out, face_out]
    if ev.stage_errors:
        outcomes.append(Outcome.REJECT)
    if Outcome.REJECT in outcomes:
        outcome = Outcome.REJECT
    elif Outcome.REVIEW in outcomes:
        outcome = Outcome.REVIEW
    else:
        outcome = Outcome.ACCEPT
    # Reasons explain the outcome: on accept only the soft notes remain (e.g. a blurry but readable card).
    reasons = _unique([*ev.stage_errors, *card_reasons, *live_reasons, *face_reasons])
    return Decision(
        outcome=outcome,
        reasons=reasons,
        scores=_scores(ev),
        thresholds=_thresholds(ev, cfg),
        model_versions=dict(ev.model_versions),
        references=references if outcome is not Outcome.REJECT else [],
        notes=_liveness_notes(ev),
    )


def _liveness_notes(ev: Evidence) -> list[str]:
    """Which liveness signal drove the stage's verdict (nothing for stages that do not say)."""
    driver = getattr(ev.liveness, "driver", None)
    verdict = getattr(ev.liveness, "verdict", None)
    return [f"liveness {verdict}: driven by {driver}"] if driver and verdict is not None else []


def _scores(ev: Evidence) -> dict[str, float | None]:
    return {
        "card_similarity": ev.card_match.similarity if ev.card_match else None,
        "template_similarity": ev.template_match.similarity if ev.template_match else None,
        "passive_liveness": float(ev.liveness.passive_score) if ev.liveness else None,
    }


def _thresholds(ev: Evidence, cfg: DecisionConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "passive_pass": _passive_threshold(ev, cfg),
        "passive_review_floor": getattr(ev.liveness, "passive_review_floor", None),
        "passive_review_margin": cfg.passive_review_margin,
    }
    m = ev.card_match or ev.template_match
    if m is not None:
        th = m.thresholds
        out.update(
            face_accept=th.accept,
            face_review=th.review,
            face_accept_far=th.accept_far,
            face_review_far=th.review_far,
            calibration=th.calibration_version,
            face_accept_population=th.accept_population,
            face_review_population=th.review_population,
        )
    return out
