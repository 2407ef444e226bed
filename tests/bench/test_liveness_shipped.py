"""The shipped liveness operating point measured on records it was not chosen on (bench/liveness_shipped.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.liveness_shipped import main, measure_shipped

RESULTS = Path(__file__).resolve().parents[2] / "bench/results"
MODELS = {"antispoof:a": "a@1", "antispoof:b": "b@2", "detector": "d@3"}


def _record(key: str, attack: str, score: float, ratio: float | None, **extra: Any) -> dict[str, Any]:
    label = "real" if attack == "none" else "spoof"
    motion = {"live": None} if ratio is None else {"live": ratio >= 3, "ratio": ratio}
    return {
        "key": key,
        "path": key,
        "label": label,
        "attack_type": attack,
        "subject": key,
        "condition": "clean",
        "passive_score": score,
        "reasons": [],
        "result": {"models": MODELS, "motion": motion, "events": []},
        **extra,
    }


def _calibration(tmp_path: Path, **entry: Any) -> Path:
    path = tmp_path / "calibration.json"
    ensemble = "a@1+b@2"
    body = {"ensemble": ensemble, "threshold": 0.8, "review_floor": 0.2, "motion_min_ratio": 3.0, **entry}
    path.write_text(json.dumps({"version": "t.1", "ensembles": {ensemble: body}}), encoding="utf-8")
    return path


def test_the_shipped_point_judges_each_presentation_as_the_stage_does(tmp_path: Path) -> None:
    records = [
        _record("video-high", "replay_monitor_video", 0.95, None),  # a replayed video performs any challenge
        _record("video-rigid", "replay_monitor_video", 0.95, 1.2),  # ... but only rigid motion: refused
        _record("video-low", "replay_monitor_video", 0.5, None),  # below the threshold
        _record("cut", "cut_photo", 0.9, 4.0),  # a worn cut photo performs it too
        _record("print", "print", 0.99, 4.0),  # a static print must perform a drawn challenge: no actions seen
        _record("person", "none", 0.79, 5.0),  # a genuine person just under the threshold
    ]
    out = measure_shipped(records, _calibration(tmp_path))
    assert (out["ensemble"], out["calibration_version"], out["threshold"]) == ("a@1+b@2", "t.1", 0.8)
    prepared = out["prepared"]
    apcer = {k: (v["events"], v["n"]) for k, v in prepared["apcer"].items()}
    assert apcer == {"cut_photo": (1, 1), "print": (0, 1), "replay_monitor_video": (1, 3), "all": (2, 5)}
    assert (prepared["bpcer"]["all"]["events"], prepared["bpcer"]["all"]["n"]) == (1, 1)
    assert prepared["apcer"]["replay_monitor_video"]["clopper_pearson"][1] < 1.0
    # Replayed as recorded, none of them showed the drawn challenge's actions: refused like the print.
    assert out["unprepared_recording"]["apcer"]["all"]["events"] == 0


def test_it_refuses_records_of_an_uncalibrated_ensemble(tmp_path: Path) -> None:
    record = _record("x", "print", 0.5, None)
    with pytest.raises(SystemExit, match="no entry"):
        measure_shipped([{**record, "result": {"models": {"antispoof:c": "c@9"}}}], _calibration(tmp_path))


def test_a_fused_entry_rescores_each_record_from_its_models(tmp_path: Path) -> None:
    """The opt-in pack's entry is on the fusion's scale: a replay whose models' mean (0.5) is under the pass line
    but whose fused score (both models at 0.9, weights 1, bias 0: 0.988) is over it passes."""
    record = _record("v", "replay_monitor_video", 0.5, None)
    record["result"]["passive_by_model"] = {"a": 0.9, "b": 0.9}
    plain = measure_shipped([record], _calibration(tmp_path))
    fused = measure_shipped(
        [record], _calibration(tmp_path, fusion={"kind": "logistic", "weights": {"a": 1.0, "b": 1.0}, "bias": 0.0})
    )
    assert plain["prepared"]["apcer"]["all"]["events"] == 0 and "fusion" not in plain
    assert fused["prepared"]["apcer"]["all"]["events"] == 1 and fused["fusion"]["bias"] == 0.0


@pytest.mark.parametrize(
    ("records", "published"),
    [
        ("liveness_eval.extra_attacks.records.jsonl.gz", "liveness_shipped.extra_attacks.json"),
        ("liveness_eval.extra_attacks.suri.records.jsonl.gz", "liveness_shipped.extra_attacks.suri.json"),
    ],
)
def test_the_committed_extra_attack_figures_are_reproduced(tmp_path: Path, records: str, published: str) -> None:
    """bench/results/liveness_shipped.extra_attacks*.json: the shipped points (default pack, and the opt-in pack's
    fusion) on the cut-photo and monitor-replay attacks added after calibration, from their committed records."""
    out = tmp_path / "shipped.json"
    assert main(["--records", str(RESULTS / records), "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads((RESULTS / published).read_text(encoding="utf-8"))
