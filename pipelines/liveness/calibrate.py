"""Calibrate the passive anti-spoofing threshold on a labelled set (``shared/data/spoof/spoof.csv``).

Every row (a video, a frame taken from a video, or a photo) is scored like production does: videos through
the full checker, images by detecting the main face and scoring it with the ensemble. The threshold and the
review floor follow the evaluation protocol's rule (``evaluation.choose_threshold``): the lowest-BPCER threshold
with APCER ≤ the target for every attack type, and the floor under which at most the BPCER target of real
scores lie. The result is merged into the versioned ``calibration.json`` next to this module. For figures with
confidence intervals on subject-disjoint folds use ``bench/liveness_eval.py`` (docs/liveness.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError
from pipelines.liveness.checker import LivenessChecker
from pipelines.liveness.evaluation import NO_ATTACK, REAL, SPOOF, Presentation, choose_threshold
from pipelines.liveness.passive import DEFAULT_CALIBRATION_PATH
from pipelines.media import load_image

# A threshold under this would pass nearly anything the networks have ever scored: never deployed.
MIN_THRESHOLD = 0.2


@dataclass(frozen=True)
class ScoredItem:
    path: str
    media: str
    label: str
    attack_type: str
    score: float | None
    error: str | None = None
    subject: str = ""

    @property
    def is_real(self) -> bool:
        return self.label == "real"


def read_spoof_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: Excel writes a byte-order mark
        return list(csv.DictReader(fh))


def score_rows(checker: LivenessChecker, rows: list[dict[str, str]], root: Path) -> list[ScoredItem]:
    # Calibration scores the same video more than once across runs: the duplicate check must not interfere.
    checker = _without_duplicate_check(checker)
    items: list[ScoredItem] = []
    for row in rows:
        path, media = row["path"], row.get("media", "video")
        score: float | None = None
        error: str | None = None
        try:
            if media == "video":
                score = checker.check(root / path).passive_score
            else:
                image = load_image(root / path)
                det, _ = checker.matcher.primary_face(image, allow_multiple=True)
                by_model = checker.passive.score_models([image], [det.bbox])[:, 0]
                score = checker.calibration.combine([float(v) for v in by_model])  # the stage's scale
        except PipelineError as exc:
            error = exc.reason.value
        attack = row.get("attack_type", "")
        items.append(ScoredItem(path, media, row["label"], attack, score, error, row.get("identity", "")))
    return items


def _without_duplicate_check(checker: LivenessChecker) -> LivenessChecker:
    if not checker.config.check_duplicates:
        return checker
    return LivenessChecker(
        checker.pack,
        replace(checker.config, check_duplicates=False),
        matcher=checker.matcher,
        calibration=checker.calibration,
    )


def error_rates(items: list[ScoredItem], threshold: float) -> dict[str, Any]:
    """APCER (spoofs accepted) and BPCER (real faces rejected); an unscorable item counts as rejected."""
    spoof = [i for i in items if not i.is_real]
    real = [i for i in items if i.is_real]
    accepted_spoofs = sum(1 for i in spoof if i.score is not None and i.score >= threshold)
    rejected_reals = sum(1 for i in real if i.score is None or i.score < threshold)
    return {
        "threshold": threshold,
        "n_spoof": len(spoof),
        "n_real": len(real),
        "apcer": accepted_spoofs / len(spoof) if spoof else None,
        "bpcer": rejected_reals / len(real) if real else None,
        "spoofs_accepted": accepted_spoofs,
        "reals_rejected": rejected_reals,
    }


def presentations(items: list[ScoredItem]) -> list[Presentation]:
    """The protocol's view of scored rows; an unscorable row is a failure to acquire (a retake)."""

    def attack(i: ScoredItem) -> str:
        if i.is_real:
            return NO_ATTACK
        return i.attack_type if i.attack_type not in ("", NO_ATTACK) else "unspecified"

    return [
        Presentation(
            key=i.path,
            label=REAL if i.is_real else SPOOF,
            attack_type=attack(i),
            condition=i.media,
            subject=i.subject,
            score=0.0 if i.score is None else i.score,
            retake=i.score is None,
        )
        for i in items
    ]


def calibrate(
    checker: LivenessChecker, spoof_csv: Path, root: Path, target_apcer: float = 0.01, target_bpcer: float = 0.02
) -> dict[str, Any]:
    items = score_rows(checker, read_spoof_csv(spoof_csv), root)
    if not any(i.is_real for i in items) or all(i.is_real for i in items):
        raise ValueError("calibration needs both real and spoof samples")
    choice = choose_threshold(presentations(items), target_apcer, target_bpcer)
    threshold = max(choice.threshold, MIN_THRESHOLD)
    return {
        "ensemble": checker.passive.key,
        "threshold": round(threshold, 4),
        "review_floor": round(min(choice.review_floor, threshold), 4),
        "rule": choice.rule + (f"; raised to the minimum {MIN_THRESHOLD}" if threshold > choice.threshold else ""),
        "targets": {"apcer": target_apcer, "bpcer": target_bpcer, "bpcer_met": choice.met_target},
        "aggregation": "mean over models of P(real), mean over the video's best (frontal, sharp, lit) key frames",
        "dev_error_rates": error_rates(items, threshold),
        "scores": [
            {"path": i.path, "media": i.media, "label": i.label, "score": i.score, "error": i.error} for i in items
        ],
        "data": spoof_csv.name,
        "calibrated_on": dt.date.today().isoformat(),
    }


def write_entry(entry: dict[str, Any], path: Path = DEFAULT_CALIBRATION_PATH) -> str:
    """Merge one ensemble's entry into the calibration file and bump its version; returns the version."""
    data: dict[str, Any] = {"version": "", "ensembles": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    today = dt.date.today().isoformat()
    serial = int(data["version"].rsplit(".", 1)[1]) + 1 if data["version"].startswith(today) else 1
    data["version"] = f"{today}.{serial}"
    old = data["ensembles"].get(entry["ensemble"], {})
    if "motion_min_ratio" not in entry and "motion_min_ratio" in old:
        # calibrate-liveness scores still media only: keep the motion rule the full evaluation chose.
        entry = {**entry, "motion_min_ratio": old["motion_min_ratio"]}
    data["ensembles"][entry["ensemble"]] = entry
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(data["version"])
