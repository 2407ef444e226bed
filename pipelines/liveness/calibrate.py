"""Calibrate the passive anti-spoofing threshold on a labelled set (``shared/data/spoof/spoof.csv``).

Every row (a video, a frame taken from a video, or a photo) is scored like production does: videos through
the full checker, images by detecting the main face and scoring it with the ensemble. The threshold is the
midpoint of the gap between the highest spoof score and the lowest real score when the two separate, else the
equal-error point. The result is merged into the versioned ``calibration.json`` next to this module.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import PipelineError
from pipelines.liveness.checker import LivenessChecker
from pipelines.liveness.passive import DEFAULT_CALIBRATION_PATH
from pipelines.media import load_image

MIN_THRESHOLD, MAX_THRESHOLD = 0.2, 0.9


@dataclass(frozen=True)
class ScoredItem:
    path: str
    media: str
    label: str
    attack_type: str
    score: float | None
    error: str | None = None

    @property
    def is_real(self) -> bool:
        return self.label == "real"


def read_spoof_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
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
                score = float(checker.passive.score([image], [det.bbox])[0])
        except PipelineError as exc:
            error = exc.reason.value
        items.append(ScoredItem(path, media, row["label"], row.get("attack_type", ""), score, error))
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


def choose_threshold(real: np.ndarray, spoof: np.ndarray) -> tuple[float, str]:
    if len(real) == 0 or len(spoof) == 0:
        raise ValueError("calibration needs both real and spoof samples")
    if spoof.max() < real.min():
        thr, rule = (float(spoof.max()) + float(real.min())) / 2, "midpoint of the real/spoof gap"
    else:
        candidates = np.unique(np.concatenate([real, spoof]))
        gaps = [abs(float(np.mean(spoof >= c)) - float(np.mean(real < c))) for c in candidates]
        thr, rule = float(candidates[int(np.argmin(gaps))]), "equal-error point"
    return float(np.clip(thr, MIN_THRESHOLD, MAX_THRESHOLD)), rule


def calibrate(checker: LivenessChecker, spoof_csv: Path, root: Path) -> dict[str, Any]:
    items = score_rows(checker, read_spoof_csv(spoof_csv), root)
    real = np.array([i.score for i in items if i.is_real and i.score is not None])
    spoof = np.array([i.score for i in items if not i.is_real and i.score is not None])
    threshold, rule = choose_threshold(real, spoof)
    return {
        "ensemble": checker.passive.key,
        "threshold": round(threshold, 4),
        "rule": rule,
        "aggregation": "mean over models of P(real), mean over the video's detector frames",
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
    data["ensembles"][entry["ensemble"]] = entry
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(data["version"])
