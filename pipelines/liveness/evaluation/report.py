"""The evaluation as a JSON-able report."""

from __future__ import annotations

from typing import Any

from pipelines.liveness.evaluation.core import (
    _DIGITS,
    ALL,
    METRICS,
    ErrorRates,
    Interval,
    Rate,
)
from pipelines.liveness.evaluation.intervals import (
    BootstrapIntervals,
    clopper_pearson,
    zero_event_upper,
)
from pipelines.liveness.evaluation.protocol import (
    Evaluation,
)
from pipelines.liveness.evaluation.thresholds import (
    ThresholdChoice,
)

# --------------------------------------------------------------------------------------------------------- report


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, _DIGITS)


def rate_to_dict(rate: Rate, confidence: float = 0.95, interval: Interval | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"events": rate.events, "n": rate.n, "value": _round(rate.value)}
    if rate.n == 0:
        return out
    out["resolution"] = _round(1 / rate.n)  # one event moves the rate by this much
    if interval is not None:
        out["bootstrap_ci"] = interval.to_list()
    out["clopper_pearson"] = clopper_pearson(rate.events, rate.n, confidence).to_list()
    if rate.events == 0:
        out["zero_events_upper_one_sided"] = _round(zero_event_upper(rate.n, confidence))
        out["rule_of_three"] = _round(3 / rate.n)
    return out


def rates_to_dict(
    rates: ErrorRates, confidence: float = 0.95, intervals: BootstrapIntervals | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in METRICS:
        groups = [*rates.groups(metric), ALL] if (metric, ALL) in rates.rates else []
        out[metric] = {
            g: rate_to_dict(rates.rate(metric, g), confidence, intervals.rates.get((metric, g)) if intervals else None)
            for g in groups
        }
    acer: dict[str, Any] = {"value": _round(rates.acer), "worst_attack_type": rates.worst_attack_type}
    if intervals is not None and intervals.acer is not None:
        acer["bootstrap_ci"] = intervals.acer.to_list()
    out["acer"] = acer
    return out


def choice_to_dict(choice: ThresholdChoice) -> dict[str, Any]:
    return {
        "threshold": _round(choice.threshold),
        "review_floor": _round(choice.review_floor),
        "motion_min_ratio": _round(choice.motion_min_ratio),
        "rule": choice.rule,
        "binding_attack_type": choice.binding_type,
        "target_apcer": choice.target_apcer,
        "target_bpcer": choice.target_bpcer,
        "cal_apcer": {t: rate_to_dict(r) for t, r in choice.cal_apcer.items()},
        "cal_bpcer": rate_to_dict(choice.cal_bpcer),
        "met_target": choice.met_target,
    }


PROTOCOL_NOTES = {
    "classification": "bona fide when not hard_reject, not retake and passive score >= threshold",
    "apcer": "per attack type: accepted / acquired attacks (attack retakes left out: neither caught nor accepted)",
    "bpcer": "per capture condition: rejected / acquired real presentations (retakes left out, ISO)",
    "bpcer_with_retakes": "per capture condition: (rejected + retakes) / all real presentations",
    "retake_rate": "retakes / all real presentations (failure to acquire)",
    "acer": "(max APCER over attack types + pooled BPCER) / 2",
    "threshold_rule": "lowest calibration BPCER with APCER <= target_apcer for every attack type",
    "review_floor_rule": "highest floor with at most target_bpcer of acquired real scores below it (<= threshold)",
    "motion_rule": "chosen first: highest rigid-motion ratio (<= 3) with at most target_motion_bpcer of acquired "
    "real presentations below it; rigid = a rejection, or a retake on a poor capture",
    "folds": "subject-disjoint; unknown-subject presentations are measured but never choose a CV threshold",
    "bootstrap": "percentile, subjects resampled with replacement; none when the rate is undefined in > half",
    "clopper_pearson": "exact binomial, ignores the correlation within a subject",
    "apcer_all": "pooled over attack types for reading only; not an ISO figure, not used by ACER",
}


def report_to_dict(ev: Evaluation) -> dict[str, Any]:
    pr = ev.protocol
    return {
        "standard": "ISO/IEC 30107-3",
        "protocol": {**pr.__dict__, "notes": PROTOCOL_NOTES},
        "counts": {
            "presentations": ev.n_presentations,
            "subjects": ev.n_subjects,
            "unknown_subject": ev.n_unknown_subject,
            "bootstrap_units": ev.intervals.n_units,
            "by_group": ev.counts,
        },
        "cross_validated": {
            "note": "out-of-fold: each presentation measured at the threshold chosen on the other folds",
            **rates_to_dict(ev.out_of_fold, pr.confidence, ev.intervals),
            "folds": [
                {
                    "index": f.index,
                    "n_calibration": f.n_calibration,
                    "n_measured": f.n_measured,
                    "choice": choice_to_dict(f.choice),
                    "measured": rates_to_dict(f.measured, pr.confidence),
                }
                for f in ev.folds
            ],
        },
        "deployment": {
            "note": "threshold chosen on ALL data; its figures are in-sample and optimistic",
            "choice": choice_to_dict(ev.deployment),
            "in_sample": rates_to_dict(ev.in_sample, pr.confidence),
        },
    }
