"""The learned fusion of the anti-spoofing models (issue 16): its arithmetic, that its evaluation never lets a
measured fold help fit what measures it, the published figures, and the stage applying a calibrated fusion to a
real clip."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench.liveness_eval import main as eval_main
from bench.liveness_eval import model_vectors, presentation_from_record, read_records, with_models
from models.packs import ModelPack
from pipelines.errors import PipelineError
from pipelines.face_match import FaceMatcher
from pipelines.liveness import LivenessChecker, LivenessConfig
from pipelines.liveness.evaluation import SPOOF, Protocol
from pipelines.liveness.evaluation.folds import subject_folds
from pipelines.liveness.evaluation.learned import evaluate_fused, fit_fusion, rescored
from pipelines.liveness.passive import LogisticFusion, PassiveCalibration, logit
from tests.service.media import LIVE_VIDEO

RESULTS = Path(__file__).resolve().parents[3] / "bench/results"
RECORDS = RESULTS / "liveness_eval.second_opinion.records.jsonl.gz"
CALIBRATION = Path(__file__).resolve().parents[3] / "pipelines/liveness/calibration.json"
SURI = ["minifasnet_v2", "minifasnet_v1se", "suri_minifas"]
PAIR = ["minifasnet_v2", "minifasnet_v1se"]


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    return [with_models(r, SURI) for r in read_records([RECORDS])]


def test_a_fusion_is_a_logistic_combination_of_the_models_logits() -> None:
    fusion = LogisticFusion(("a", "b"), (2.0, -1.0), 0.5)
    z = 0.5 + 2.0 * math.log(0.9 / 0.1) - math.log(0.3 / 0.7)
    assert fusion.combine([0.9, 0.3]) == pytest.approx(1 / (1 + math.exp(-z)))
    # A saturated model is clipped, not infinite: the others still count.
    assert 0.0 < fusion.combine([0.0, 1.0]) < fusion.combine([0.0, 0.5]) < 1.0
    assert logit(1.0) == pytest.approx(-logit(0.0))
    assert LogisticFusion.from_dict(fusion.to_dict()) == fusion
    with pytest.raises(ValueError, match="2 models given 3"):
        fusion.combine([0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="one weight per model"):
        LogisticFusion(("a",), (1.0, 2.0), 0.0)
    with pytest.raises(ValueError, match="unknown fusion kind"):
        LogisticFusion.from_dict({"kind": "mlp", "weights": {"a": 1}, "bias": 0})


def test_a_calibration_entry_with_a_fusion_is_loaded_and_a_damaged_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    fusion = {"kind": "logistic", "weights": {"a": 1.0, "b": 0.5}, "bias": -0.2}
    path.write_text(json.dumps({"version": "v", "ensembles": {"a+b": {"threshold": 0.6, "fusion": fusion}}}))
    cal = PassiveCalibration.load("a+b", path)
    assert cal.fusion == LogisticFusion(("a", "b"), (1.0, 0.5), -0.2)
    assert cal.combine([0.8, 0.4]) == cal.fusion.combine([0.8, 0.4])
    # Without a fusion the combination is the models' mean, as before.
    assert PassiveCalibration.load("other", path).combine([0.8, 0.4]) == pytest.approx(0.6)
    path.write_text(json.dumps({"version": "v", "ensembles": {"a+b": {"threshold": 0.6, "fusion": {"kind": 1}}}}))
    with pytest.raises(PipelineError, match="bad fusion"):
        PassiveCalibration.load("a+b", path)


def test_the_fit_weights_the_models_by_how_well_they_separate(records: list[dict[str, object]]) -> None:
    """On the committed records: each model gets a positive weight, and a column of noise gets almost none."""
    ps = [presentation_from_record(r) for r in records]
    vectors = model_vectors(records, SURI)
    fusion = fit_fusion(ps, vectors, SURI)
    assert all(w > 0.05 for w in fusion.weights)
    noisy = {k: [*v, 0.5 + 0.4 * math.sin(i)] for i, (k, v) in enumerate(sorted(vectors.items()))}
    with_noise = fit_fusion(ps, noisy, [*SURI, "noise"])
    assert abs(with_noise.weights[-1]) < 0.3 * min(fusion.weights)
    with pytest.raises(ValueError, match="genuine and attack"):
        fit_fusion([p for p in ps if p.label == SPOOF], vectors, SURI)


def test_a_measured_fold_never_helps_fit_or_choose_what_measures_it(records: list[dict[str, object]]) -> None:
    """Scramble every model score of the first fold's presentations: that fold's threshold is exactly what it
    was (it was fitted and chosen without them), its outcomes change, and the other folds' thresholds move (they
    did use it), so the test can fail."""
    protocol = Protocol(n_boot=20)
    ps = [presentation_from_record(r) for r in records]
    vectors = model_vectors(records, SURI)
    first = {p.key for p in subject_folds(ps, protocol.folds, protocol.seed)[0]}
    scrambled = {k: ([1.0 - s for s in v] if k in first else v) for k, v in vectors.items()}
    before, _ = evaluate_fused(ps, vectors, SURI, protocol)
    after, _ = evaluate_fused(ps, scrambled, SURI, protocol)
    assert after.folds[0].choice.threshold == before.folds[0].choice.threshold
    assert after.folds[0].measured.rate("bpcer") != before.folds[0].measured.rate("bpcer")
    assert all(after.folds[i].choice.threshold != before.folds[i].choice.threshold for i in range(1, protocol.folds))


def test_the_published_fusion_comparison_is_reproduced(tmp_path: Path) -> None:
    """bench/results/liveness_eval.fusion.json from the committed records; the fused three models refuse fewer
    clean genuine clips than the deployed pair's mean at no worse APCER for any attack type."""
    out = tmp_path / "fusion.json"
    sets = [",".join(PAIR), "logistic:" + ",".join(PAIR), ",".join(SURI), "logistic:" + ",".join(SURI)]
    args = ["compare", "--records", str(RECORDS), "--out", str(out), *(a for s in sets for a in ("--models", s))]
    assert eval_main(args) == 0
    published = json.loads((RESULTS / "liveness_eval.fusion.json").read_text(encoding="utf-8"))
    assert json.loads(out.read_text(encoding="utf-8")) == published
    pair, fused = published["ensembles"]["+".join(PAIR)], published["ensembles"][f"logistic({','.join(SURI)})"]
    assert fused["bpcer"]["clean"]["value"] < 0.6 * pair["bpcer"]["clean"]["value"]
    for attack, rate in pair["apcer"].items():
        assert fused["apcer"][attack]["value"] <= rate["value"], attack
    assert fused["apcer"]["replay_tablet"]["value"] <= 0.01


def test_the_calibrated_fusion_is_what_the_evaluation_writes(tmp_path: Path) -> None:
    """pipelines/liveness/calibration.json's fused ensemble: `evaluate --fusion --write-calibration` on the
    committed records writes the same threshold, floor and weights."""
    path = tmp_path / "calibration.json"
    shutil.copy(CALIBRATION, path)
    args = ["evaluate", "--records", str(RECORDS), "--models", ",".join(SURI), "--fusion", "--n-boot", "50"]
    assert eval_main([*args, "--out", str(tmp_path / "r.json"), "--write-calibration", str(path)]) == 0
    shipped = json.loads(CALIBRATION.read_text(encoding="utf-8"))["ensembles"]
    written = json.loads(path.read_text(encoding="utf-8"))["ensembles"]
    (key,) = [k for k in shipped if k.count("+") == 2]
    for field in ("threshold", "review_floor", "motion_min_ratio", "fusion"):
        assert written[key][field] == shipped[key][field], field


def test_the_stage_scores_a_real_clip_with_a_calibrated_fusion(
    pack: ModelPack, matcher: FaceMatcher, data_dir: Path
) -> None:
    """A fusion that keeps only MiniFASNet V2 (weight 1 on its logit, none on V1SE) makes the video's score V2's
    mean over the passive frames, and every frame score V2's own."""
    plain = LivenessChecker(pack, LivenessConfig(check_duplicates=False), matcher=matcher)
    only_v2 = LogisticFusion(tuple(plain.passive.names), (1.0, 0.0), 0.0)
    fused = LivenessChecker(
        pack,
        LivenessConfig(check_duplicates=False),
        matcher=matcher,
        calibration=replace(plain.calibration, fusion=only_v2, threshold=0.5),
    )
    before, after = plain.check(data_dir / LIVE_VIDEO), fused.check(data_dir / LIVE_VIDEO)
    v2 = before.passive_by_model["minifasnet_v2"]
    assert after.passive_by_model == before.passive_by_model
    assert after.passive_score == pytest.approx(min(max(v2, 1e-4), 1 - 1e-4), abs=1e-6)
    assert before.passive_score != pytest.approx(after.passive_score, abs=1e-4)
    assert after.passive_threshold == 0.5
    # The best frames staff see carry the fused score too, on the threshold's scale (they carried the mean).
    fused_at = dict(after.frame_scores)
    assert after.best_frames
    assert all(b.passive_score == pytest.approx(fused_at[b.t], abs=1e-9) for b in after.best_frames)
    with pytest.raises(PipelineError, match="fuses minifasnet_v2, suri_minifas"):
        LivenessChecker(
            pack,
            matcher=matcher,
            calibration=replace(plain.calibration, fusion=LogisticFusion(("minifasnet_v2", "suri_minifas"), (1, 1), 0)),
        )


def test_rescoring_keeps_presentations_without_a_scored_face(records: list[dict[str, object]]) -> None:
    ps = [presentation_from_record(r) for r in records]
    vectors = model_vectors(records, SURI)
    unscored = [p for p in ps if p.key not in vectors]
    fusion = LogisticFusion(tuple(SURI), (1.0, 1.0, 1.0), 0.0)
    assert unscored and rescored(unscored, vectors, fusion) == unscored
