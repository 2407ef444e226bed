"""An ISO/IEC 30107-3 evaluation protocol for the liveness stage (pure numpy; scipy only if installed).

Vocabulary (ISO/IEC 30107-3):

* **APCER** of one attack type (PAI species): the share of that type's attack presentations classified bona fide.
* **BPCER** of one capture condition: the share of its bona fide presentations classified as attacks.
* **ACER** = (max APCER over attack types + BPCER) / 2: the worst attack type, not their mean.

How a presentation is classified (`classify`): bona fide when no signal other than the passive score rejected
it (`hard_reject`), it was not sent back for a retake, and its passive score is at least the threshold.

A **retake** is a failure to acquire, not a classification (the citizen is asked to film again), so it is
reported apart:

* `bpcer` leaves retakes out of its denominator (the ISO figure),
* `retake_rate` is the share of real presentations sent back,
* `bpcer_with_retakes` counts a retake as a rejection (what a citizen experiences on the first try),
* `apcer` leaves attack retakes out as well: an attack sent back was neither caught nor let through, and counting
  it as caught would flatter the figure. `attack_retake_rate` says how many there were.

Every rate also exists for the group `"all"` (pooled). APCER pooled over types is *not* an ISO figure; it is
there for reading only, and ACER never uses it.

Protocol (`evaluate`):

1. `subject_folds` splits the presentations into k folds, each subject in exactly one fold.
2. Each fold is measured at the threshold `choose_threshold` picks on the other folds: the lowest-BPCER
   threshold with APCER ≤ `target_apcer` for every attack type.
3. The out-of-fold classifications are pooled into one set of rates. Each rate gets a subject-bootstrap
   percentile interval and a Clopper–Pearson interval; with zero events, also the rule of three.
4. The deployment threshold is chosen on all the data by the same rule. Its figures are in-sample and optimistic,
   and the report labels them so.

A presentation with an unknown subject (`subject == ""`) could be the same person as anyone in a calibration set.
So it is **never used to choose a cross-validation threshold**: it is only measured, in the one fold it is
assigned to. In the bootstrap it is a subject of its own. The deployment choice has no held-out data to leak
into, so it uses every presentation.
"""

from pipelines.liveness.evaluation.challenge import drawn_challenge, under_challenge
from pipelines.liveness.evaluation.core import (
    ALL,
    APCER,
    ATTACK_RETAKE_RATE,
    BPCER,
    BPCER_WITH_RETAKES,
    METRICS,
    NO_ATTACK,
    REAL,
    RETAKE_RATE,
    SCORE_MAX,
    SPOOF,
    ErrorRates,
    Interval,
    Outcome,
    Presentation,
    Rate,
    RateKey,
    classify,
    error_rates,
    measure,
    retake_at,
)
from pipelines.liveness.evaluation.folds import (
    calibration_pool,
    subject_folds,
)
from pipelines.liveness.evaluation.intervals import (
    BootstrapIntervals,
    bootstrap_intervals,
    clopper_pearson,
    clopper_pearson_bisection,
    zero_event_upper,
)
from pipelines.liveness.evaluation.protocol import (
    Evaluation,
    FoldResult,
    Protocol,
    choose_operating_point,
    evaluate,
)
from pipelines.liveness.evaluation.report import (
    PROTOCOL_NOTES,
    choice_to_dict,
    rate_to_dict,
    rates_to_dict,
    report_to_dict,
)
from pipelines.liveness.evaluation.thresholds import (
    MOTION_RATIO_CAP,
    ThresholdChoice,
    choose_motion_ratio,
    choose_review_floor,
    choose_threshold,
    rigid_at,
    with_motion_rule,
)

__all__ = [
    "ALL",
    "APCER",
    "ATTACK_RETAKE_RATE",
    "BPCER",
    "BPCER_WITH_RETAKES",
    "METRICS",
    "MOTION_RATIO_CAP",
    "NO_ATTACK",
    "PROTOCOL_NOTES",
    "REAL",
    "RETAKE_RATE",
    "SCORE_MAX",
    "SPOOF",
    "BootstrapIntervals",
    "ErrorRates",
    "Evaluation",
    "FoldResult",
    "Interval",
    "Outcome",
    "Presentation",
    "Protocol",
    "Rate",
    "RateKey",
    "ThresholdChoice",
    "bootstrap_intervals",
    "calibration_pool",
    "choice_to_dict",
    "choose_motion_ratio",
    "choose_operating_point",
    "choose_review_floor",
    "choose_threshold",
    "classify",
    "clopper_pearson",
    "clopper_pearson_bisection",
    "drawn_challenge",
    "error_rates",
    "evaluate",
    "measure",
    "rate_to_dict",
    "rates_to_dict",
    "report_to_dict",
    "retake_at",
    "rigid_at",
    "subject_folds",
    "under_challenge",
    "with_motion_rule",
    "zero_event_upper",
]
