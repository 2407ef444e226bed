"""Passive anti-spoofing: MiniFASNet V2 (crop ×2.7) + V1SE (crop ×4.0) ensemble, and its calibrated threshold.

Per face: the mean over the ensemble of each model's 'real' probability (minivision's rule of summing the
softmaxes, divided by the number of models). Per video: the mean over the analysed frames. The threshold comes
from ``calibration.json``, written by ``bench/liveness_eval.py evaluate --write-calibration``.

An ensemble's calibration entry may instead carry a learned ``fusion`` (:class:`LogisticFusion`): the video's
score is then a logistic combination of each model's mean over the same frames, weighted as the evaluation
protocol fitted them on subject-disjoint folds (``pipelines/liveness/evaluation/learned.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import PipelineError
from pipelines.reasons import ReasonCode

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
# Used only when no calibration entry exists for the ensemble: minivision's own argmax rule is about 0.5.
FALLBACK_THRESHOLD = 0.5


# A model's P(real) is clipped to this distance from 0 and 1 before its logit is taken: one saturated model must
# not outvote the others with an infinite logit.
LOGIT_EPS = 1e-4


def logit(p: float) -> float:
    q = min(max(float(p), LOGIT_EPS), 1.0 - LOGIT_EPS)
    return math.log(q / (1.0 - q))


@dataclass(frozen=True)
class LogisticFusion:
    """score = sigmoid(bias + Σ weight_m · logit(P_m(real))), one weight per model of the ensemble, in order.

    Averaging gives every model the same say; a model that is often confidently wrong on our cameras should
    count less, and one that separates well more. The weights are fitted, never set by hand."""

    names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.weights):
            raise ValueError("a fusion needs one weight per model")
        if not all(math.isfinite(w) for w in (*self.weights, self.bias)):
            raise ValueError("fusion weights must be finite")

    def combine(self, by_model: Sequence[float]) -> float:
        if len(by_model) != len(self.weights):
            raise ValueError(f"fusion of {len(self.weights)} models given {len(by_model)} scores")
        z = self.bias + sum(w * logit(p) for w, p in zip(self.weights, by_model, strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic",
            "inputs": "logit of each model's mean P(real) over the video's passive frames",
            "weights": {n: round(w, 6) for n, w in zip(self.names, self.weights, strict=True)},
            "bias": round(self.bias, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticFusion:
        if data.get("kind") != "logistic":
            raise ValueError(f"unknown fusion kind {data.get('kind')!r}")
        weights: Mapping[str, Any] = data["weights"]
        return cls(tuple(weights), tuple(float(w) for w in weights.values()), float(data["bias"]))


def mean_score(by_model: Sequence[float]) -> float:
    """The models' mean, in float32 as the scorer computes it (PassiveScorer.score)."""
    return float(np.asarray(by_model, dtype=np.float32).mean())


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
    fusion: LogisticFusion | None = None  # None: the models' mean

    def combine(self, by_model: Sequence[float]) -> float:
        """One score from each model's score, on the scale of `threshold`."""
        return mean_score(by_model) if self.fusion is None else self.fusion.combine(by_model)

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
        try:
            fusion = None if entry.get("fusion") is None else LogisticFusion.from_dict(entry["fusion"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, f"liveness calibration {p}: bad fusion: {exc}") from exc
        return cls(threshold, ensemble, version, str(p), floor, None if ratio is None else float(ratio), fusion)


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
