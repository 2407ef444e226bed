"""The shipped liveness operating point, measured on scored records it was not chosen on.

    python bench/liveness_shipped.py --records records.jsonl [--records more.jsonl.gz] --out result.json

`bench/liveness_eval.py evaluate` chooses an operating point on calibration folds and measures it on the others.
This measures the point production actually loads (`pipelines/liveness/calibration.json`, the entry of the
ensemble the records were scored with: its pass threshold and motion ratio) on presentations that played no part
in choosing it, such as attack types added after it was calibrated (a fused entry re-scores each record from its
models' own scores, so the records must be scored with that pack). Nothing is chosen here, so there are no
folds: each presentation is judged once, as in the evaluation's challenge mode (a static attack must perform the
challenge drawn for it; `liveness_eval.py`), twice over: with replayed videos and worn cut photos taken to perform
any challenge (`prepared`, the worst case: a puppeted or re-recorded video), and with them held to their own
recorded actions like a photo (`unprepared_recording`: an old video replayed as it is). Every rate carries its
exact Clopper–Pearson interval.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.liveness_eval import (  # noqa: E402
    model_vectors,
    performs_challenge,
    presentation_from_record,
    read_records,
    record_events,
)
from pipelines.liveness.evaluation import (  # noqa: E402
    Presentation,
    measure,
    rates_to_dict,
    under_challenge,
    with_motion_rule,
)
from pipelines.liveness.motion import DEFAULT_MIN_RATIO  # noqa: E402
from pipelines.liveness.passive import DEFAULT_CALIBRATION_PATH, LogisticFusion, PassiveCalibration  # noqa: E402

SEED = 0  # the evaluation protocol's default: each attack gets the challenge it drew there


def _fused(p: Presentation, vectors: dict[str, list[float]], fusion: LogisticFusion | None) -> Presentation:
    """`p` scored by the entry's fusion of its models' scores (unchanged without a fusion or a scored face)."""
    v = vectors.get(p.key)
    return p if fusion is None or not v else replace(p, score=fusion.combine(v))


def ensemble_of(records: Sequence[dict[str, Any]]) -> str:
    """The anti-spoofing ensemble the records were scored with, named as calibration.json names it."""
    for r in records:
        models = (r.get("result") or {}).get("models")
        if models:
            return "+".join(v for k, v in models.items() if k.startswith("antispoof:"))
    raise SystemExit("no record names its models: score them with bench/liveness_eval.py score")


def measure_shipped(records: Sequence[dict[str, Any]], calibration: Path = DEFAULT_CALIBRATION_PATH) -> dict[str, Any]:
    ensemble = ensemble_of(records)
    shipped = PassiveCalibration.load(ensemble, calibration)
    if shipped.version == "uncalibrated":
        raise SystemExit(f"{calibration} has no entry for {ensemble}")
    # A fused entry's threshold is on the fusion's scale: each record is re-scored from its models' own scores.
    vectors = {} if shipped.fusion is None else model_vectors(records, shipped.fusion.names)
    ratio = DEFAULT_MIN_RATIO if shipped.motion_min_ratio is None else shipped.motion_min_ratio

    def judged(prepared: bool) -> dict[str, Any]:
        ps = [
            with_motion_rule(
                _fused(
                    under_challenge(
                        presentation_from_record(r), record_events(r), SEED, prepared=prepared and performs_challenge(r)
                    ),
                    vectors,
                    shipped.fusion,
                ),
                ratio,
            )
            for r in records
        ]
        return rates_to_dict(measure(ps, shipped.threshold))

    return {
        "note": "the shipped operating point on these records, challenge mode; nothing chosen on them",
        "ensemble": ensemble,
        "calibration_version": shipped.version,
        "threshold": shipped.threshold,
        "motion_min_ratio": ratio,
        **({} if shipped.fusion is None else {"fusion": shipped.fusion.to_dict()}),
        "presentations": len(records),
        # The worst case: a replayed video (or a worn cut photo) does whatever the challenge asks.
        "prepared": judged(True),
        # An old recording replayed as it is (last year's video, a clip from a phone): like a photo, it passes
        # the random challenge only if its own actions happen to satisfy it in order.
        "unprepared_recording": judged(False),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--records", type=Path, action="append", required=True)
    parser.add_argument("--calibration", type=Path, default=DEFAULT_CALIBRATION_PATH)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure_shipped(read_records(args.records), args.calibration)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
