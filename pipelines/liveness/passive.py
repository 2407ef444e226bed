"""Passive anti-spoofing: MiniFASNet V2 (crop ×2.7) + V1SE (crop ×4.0) ensemble, and its calibrated threshold.

Per face: the mean over the ensemble of each model's 'real' probability (minivision's rule of summing the
softmaxes, divided by the number of models). Per video: the mean over the analysed frames. The threshold comes
from ``calibration.json``, written by ``pension-cert calibrate-liveness`` from ``shared/data/spoof``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import PipelineError
from pipelines.reasons import ReasonCode

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
# Used only when no calibration entry exists for the ensemble: minivision's own argmax rule is about 0.5.
FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True)
class PassiveCalibration:
    """``threshold``: a score at or above it passes. ``review_floor``: below it a score is a clear spoof; between
    the two a video whose challenge was performed with live motion goes to staff review (see fusion.py)."""

    threshold: float
    ensemble: str
    version: str
    path: str
    review_floor: float = FALLBACK_THRESHOLD / 2
    # The rigid-motion cue's ratio threshold chosen by the evaluation protocol (None: motion.py's design value).
    motion_min_ratio: float | None = None

    @classmethod
    def load(cls, ensemble: str, path: Path | str = DEFAULT_CALIBRATION_PATH) -> PassiveCalibration:
        p = Path(path)
        try:
            data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(FALLBACK_THRESHOLD, ensemble, "uncalibrated", str(p))
        except (OSError, ValueError) as exc:
            raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, f"liveness calibration {p} unreadable: {exc}") from exc
        entry = data.get("ensembles", {}).get(ensemble)
        if entry is None:
            return cls(FALLBACK_THRESHOLD, ensemble, "uncalibrated", str(p))
        threshold = float(entry["threshold"])
        floor = min(float(entry.get("review_floor", threshold / 2)), threshold)
        ratio = entry.get("motion_min_ratio")
        version = str(data.get("version", ""))
        return cls(threshold, ensemble, version, str(p), floor, None if ratio is None else float(ratio))


def ensemble_key(models: Sequence[Any]) -> str:
    return "+".join(m.version for m in models)


class PassiveScorer:
    """Scores faces with every anti-spoofing model of the pack and averages them."""

    def __init__(self, models: Sequence[Any]) -> None:
        if not models:
            raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, "the model pack has no anti-spoofing model")
        self.models = list(models)
        self.key = ensemble_key(self.models)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def score_models(
        self, images_bgr: Sequence[np.ndarray], bboxes: Sequence[tuple[float, float, float, float]]
    ) -> np.ndarray:
        """Real-face probability of each model (rows, in ``names`` order) per (image, box) (columns), 0..1."""
        if not images_bgr:
            return np.zeros((len(self.models), 0), dtype=np.float32)
        return np.stack([np.asarray(m.real_scores(images_bgr, bboxes), dtype=np.float32) for m in self.models])

    def score(
        self, images_bgr: Sequence[np.ndarray], bboxes: Sequence[tuple[float, float, float, float]]
    ) -> np.ndarray:
        """Real-face probability per (image, box), 0..1: the mean over the models."""
        out: np.ndarray = self.score_models(images_bgr, bboxes).mean(axis=0)
        return out

    def versions(self) -> dict[str, str]:
        return {f"antispoof:{m.name}": m.version for m in self.models}
