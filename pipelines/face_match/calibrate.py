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

from pipelines.face_match.calibration import (
    DEFAULT_CALIBRATION_PATH,
    FAR_KEYS,
    LFW,
    deployed_thresholds,
    recognizer_key,
)
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


def lfw_population(entry: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """The LFW calibration of an entry (its stats, its LFW ``thresholds``), as one population among the others."""
    at_far: dict[str, dict[str, Any]] = entry["stats"]["at_far"]
    return {
        "description": "LFW news photos (deep-funneled DevTrain people): mostly non-Asian, mostly middle-aged",
        "thresholds": dict(thresholds),
        "method": {k: at_far[k]["method"] for k in FAR_KEYS},
        "far_observed_or_extrapolated": {
            k: "observed" if at_far[k]["method"] == "empirical" else "extrapolated (tail fit)" for k in FAR_KEYS
        },
        "impostor_pairs": entry["stats"]["n_impostor"],
        "genuine_pairs": entry["stats"]["n_genuine"],
        "calibrated_on": entry.get("calibrated_on"),
    }


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"version": "", "recognizers": {}}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
    return data


def _write(data: dict[str, Any], path: Path) -> str:
    today = dt.date.today().isoformat()
    serial = int(data["version"].rsplit(".", 1)[1]) + 1 if data["version"].startswith(today) else 1
    data["version"] = f"{today}.{serial}"
    data["recognizers"] = dict(sorted(data["recognizers"].items()))
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return str(data["version"])


def _deploy(entry: dict[str, Any]) -> None:
    thresholds, origin = deployed_thresholds(entry["populations"])
    entry["thresholds"] = {k: round(thresholds[k], 6) for k in FAR_KEYS}
    entry["threshold_population"] = {k: origin[k] for k in FAR_KEYS}


def write_entry(entry: dict[str, Any], path: Path = DEFAULT_CALIBRATION_PATH) -> str:
    """Merge one recognizer's LFW entry into the calibration file, keeping its other populations; bump the
    version; returns it. The deployed thresholds are the strictest over the populations."""
    data = _read(path)
    key = recognizer_key(entry["recognizer"], entry["flip_tta"])
    populations = dict(data["recognizers"].get(key, {}).get("populations", {}))
    new = dict(entry)
    populations[LFW] = lfw_population(new, new["thresholds"])
    new["populations"] = dict(sorted(populations.items()))
    _deploy(new)
    data["recognizers"][key] = new
    return _write(data, path)


def write_populations(key: str, populations: dict[str, dict[str, Any]], path: Path = DEFAULT_CALIBRATION_PATH) -> str:
    """Add or replace populations of an existing recognizer entry and redeploy its thresholds."""
    data = _read(path)
    entry = data["recognizers"].get(key)
    if entry is None:
        raise ValueError(f"{path} has no entry for {key}: calibrate it on LFW pairs first")
    # An entry written before populations existed: its thresholds are its LFW thresholds.
    merged = dict(entry.get("populations") or {LFW: lfw_population(entry, entry["thresholds"])})
    merged.update(populations)
    entry["populations"] = dict(sorted(merged.items()))
    _deploy(entry)
    return _write(data, path)
