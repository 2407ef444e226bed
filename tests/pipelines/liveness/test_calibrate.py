"""calibrate-liveness follows the evaluation protocol's rule on the shared spoof set."""

from __future__ import annotations

from pathlib import Path

from pipelines.liveness import LivenessChecker
from pipelines.liveness.calibrate import calibrate


def test_threshold_meets_the_apcer_target_and_the_floor_sits_below_it(
    shared_checker: LivenessChecker, data_dir: Path
) -> None:
    entry = calibrate(shared_checker, data_dir / "spoof/spoof.csv", data_dir)
    rates = entry["dev_error_rates"]
    assert rates["n_spoof"] == 20 and rates["spoofs_accepted"] == 0  # APCER 0 ≤ 1 % on every attack type
    assert "APCER <= 0.01" in entry["rule"]
    spoof_max = max(s["score"] for s in entry["scores"] if s["label"] == "spoof")
    real_min = min(s["score"] for s in entry["scores"] if s["label"] == "real")
    assert spoof_max < entry["threshold"] <= real_min
    assert 0 < entry["review_floor"] <= entry["threshold"]
    assert entry["targets"] == {"apcer": 0.01, "bpcer": 0.02, "bpcer_met": True}
