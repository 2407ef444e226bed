"""Versioned calibration file: cosine thresholds at fixed false-accept rates, per recognizer and population.

Written by ``pension-cert calibrate-faces`` (see :mod:`pipelines.face_match.calibrate`), read by the matcher.
An entry holds the thresholds measured on each population (``populations``: LFW, East-Asian older faces, ...)
and the deployed threshold at each FAR, the strictest of them: a FAR is only claimed where it holds for every
population we measured, and ``threshold_population`` names the one that set it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError
from pipelines.face_match.result import Thresholds
from pipelines.reasons import ReasonCode

DEFAULT_CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
# A deployment's own calibration file (the shipped one plus the population of its enrolled pensioners, written
# by `pension-cert calibrate-faces --from-enrolled`); read instead of the shipped file when set.
ENV_CALIBRATION = "PENSION_CERT_FACE_CALIBRATION"


def calibration_path() -> Path:
    """The calibration file the face-match stage reads: PENSION_CERT_FACE_CALIBRATION, else the shipped one."""
    env = os.environ.get(ENV_CALIBRATION)
    return Path(env) if env else DEFAULT_CALIBRATION_PATH


FAR_KEYS = ("1e-2", "1e-3", "1e-4")
# The population of the first calibration (LFW news photos, mostly non-Asian, mostly middle-aged).
LFW = "lfw"


def recognizer_key(version: str, flip_tta: bool) -> str:
    return f"{version}{'+flip' if flip_tta else ''}"


@dataclass(frozen=True)
class Calibration:
    version: str
    recognizers: dict[str, dict[str, Any]]
    path: str

    @classmethod
    def load(cls, path: Path | str | None = None) -> Calibration:
        """The file at ``path`` (default: :func:`calibration_path`); MODEL_UNAVAILABLE, saying why, when it is
        missing, unreadable or not a calibration file (the settings check reports the same message)."""
        p = calibration_path() if path is None else Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE,
                f"calibration file {p} does not exist (copy pipelines/face_match/calibration.json there, or run "
                "`pension-cert calibrate-faces`)",
            ) from None
        except (OSError, ValueError) as exc:  # a directory, no permission, not UTF-8, not JSON
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE, f"calibration file {p} is not a readable JSON file ({type(exc).__name__})"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("recognizers"), dict) or "version" not in data:
            raise PipelineError(
                ReasonCode.MODEL_UNAVAILABLE, f"{p} is not a face-match calibration file (no version or recognizers)"
            )
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
        origin = entry.get("threshold_population", {})
        return Thresholds(
            accept=float(far[accept_far]),
            review=float(far[review_far]),
            accept_far=accept_far,
            review_far=review_far,
            recognizer=key,
            calibration_version=self.version,
            accept_population=str(origin.get(accept_far, LFW)),
            review_population=str(origin.get(review_far, LFW)),
        )


def deployed_thresholds(populations: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, str]]:
    """Per FAR, the strictest threshold over the populations, and the population it came from."""
    thresholds: dict[str, float] = {}
    origin: dict[str, str] = {}
    for name, pop in sorted(populations.items()):
        for far, t in pop["thresholds"].items():
            if far not in thresholds or float(t) > thresholds[far]:
                thresholds[far], origin[far] = float(t), name
    return thresholds, origin
