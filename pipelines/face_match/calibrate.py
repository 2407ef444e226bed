"""Calibrate face-match thresholds at FAR 1e-2 / 1e-3 / 1e-4 and write them to the versioned calibration file.

Genuine and impostor scores come from a labelled pair list (``path_a,path_b,label``); impostors are topped up
with every cross-identity pair of an identity list (``path,identity,source``) restricted to one source, because
1e-4 needs far more impostors than a pair list holds.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, FAR_KEYS, recognizer_key
from pipelines.face_match.evaluation import all_vs_all, embed_paths, pair_scores, read_identities, read_pairs
from pipelines.face_match.matcher import FaceMatcher
from pipelines.face_match.metrics import summary

FARS = (1e-2, 1e-3, 1e-4)


def calibrate(
    matcher: FaceMatcher,
    pairs_csv: Path,
    root: Path,
    faces_csv: Path | None = None,
    faces_source: str | None = None,
) -> dict[str, Any]:
    """Scores and thresholds for the matcher's recognizer (no file is written)."""
    pairs = read_pairs(pairs_csv)
    identities = read_identities(faces_csv, faces_source) if faces_csv else {}
    emb, errors = embed_paths(matcher, root, [p for pr in pairs for p in (pr.path_a, pr.path_b)] + list(identities))
    genuine, impostor = pair_scores(pairs, emb)
    if identities:
        g2, i2 = all_vs_all(identities, emb)
        genuine, impostor = np.concatenate([genuine, g2]), np.concatenate([impostor, i2])
    stats = summary(genuine, impostor, FARS)
    at_far: dict[str, dict[str, Any]] = stats["at_far"]  # type: ignore[assignment]
    return {
        "recognizer": matcher.recognizer.version,
        "detector": matcher.detector.version,
        "flip_tta": matcher.config.flip_tta,
        "thresholds": {k: at_far[k]["threshold"] for k in FAR_KEYS},
        "stats": stats,
        "images_without_face": len(errors),
        "data": {
            "pairs": pairs_csv.name,
            "identities": faces_csv.name if faces_csv else None,
            "identities_source": faces_source,
        },
        "calibrated_on": dt.date.today().isoformat(),
    }


def write_entry(entry: dict[str, Any], path: Path = DEFAULT_CALIBRATION_PATH) -> str:
    """Merge one recognizer's entry into the calibration file and bump its version; returns the version."""
    data: dict[str, Any] = {"version": "", "recognizers": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    today = dt.date.today().isoformat()
    serial = int(data["version"].rsplit(".", 1)[1]) + 1 if data["version"].startswith(today) else 1
    data["version"] = f"{today}.{serial}"
    data["recognizers"][recognizer_key(entry["recognizer"], entry["flip_tta"])] = entry
    data["recognizers"] = dict(sorted(data["recognizers"].items()))
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(data["version"])
