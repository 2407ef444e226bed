"""Versioned calibration file: cosine thresholds at fixed false-accept rates, per recognizer.

Written by ``pension-cert calibrate-faces`` (see :mod:`pipelines.face_match.calibrate`), read by the matcher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError
from pipelines.face_match.result import Thresholds
from pipelines.reasons import ReasonCode

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
FAR_KEYS = ("1e-2", "1e-3", "1e-4")


def recognizer_key(version: str, flip_tta: bool) -> str:
    return f"{version}{'+flip' if flip_tta else ''}"


@dataclass(frozen=True)
class Calibration:
    version: str
    recognizers: dict[str, dict[str, Any]]
    path: str

    @classmethod
    def load(cls, path: Path | str = DEFAULT_CALIBRATION_PATH) -> Calibration:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE, f"calibration file {p} is missing; run `pension-cert calibrate-faces`"
            ) from None
        return cls(str(data["version"]), dict(data["recognizers"]), str(p))

    def thresholds(self, version: str, flip_tta: bool, accept_far: str, review_far: str) -> Thresholds:
        key = recognizer_key(version, flip_tta)
        entry = self.recognizers.get(key)
        if entry is None:
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE,
                f"no calibration for recognizer {key} in {self.path}; run `pension-cert calibrate-faces`",
            )
        far = entry["thresholds"]
        for k in (accept_far, review_far):
            if k not in far:
                raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, f"calibration {key} has no FAR {k}")
        return Thresholds(
            accept=float(far[accept_far]),
            review=float(far[review_far]),
            accept_far=accept_far,
            review_far=review_far,
            recognizer=key,
            calibration_version=self.version,
        )
