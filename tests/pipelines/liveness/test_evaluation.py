"""The ISO/IEC 30107-3 evaluation protocol on hand-built presentations whose answers are known."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.liveness_eval import compact_record, performs_challenge, presentation_from_record, record_flags, with_models
from bench.liveness_eval import main as eval_main
from pipelines.liveness.actions import ActionEvent
from pipelines.liveness.evaluation import (
    ALL,
    APCER,
    ATTACK_RETAKE_RATE,
    BPCER,
    BPCER_WITH_RETAKES,
    MOTION_RATIO_CAP,
    REAL,
    RETAKE_RATE,
    SPOOF,
    Outcome,
    Presentation,
    Protocol,
    Rate,
    bootstrap_intervals,
    calibration_pool,
    choose_motion_ratio,
    choose_operating_point,
    choose_review_floor,
    choose_threshold,
    classify,
    clopper_pearson,
    clopper_pearson_bisection,
    drawn_challenge,
    evaluate,
    measure,
    report_to_dict,
    retake_at,
    rigid_at,
    subject_folds,
    under_challenge,
    with_motion_rule,
    zero_event_upper,
)
from pipelines.liveness.passive import PassiveCalibration
from tests.service.media import LIVE_VIDEO

DATA = Path(__file__).with_name("data")


def real(
    key: str,
    score: float,
    *,
    subject: str = "s",
    condition: str = "clean",
    motion_ratio: float | None = None,
    **flags: bool,
) -> Presentation:
    return Presentation(key, REAL, "none", condition, subject, score, **flags, motion_ratio=motion_ratio)


def attack(
    key: str, score: float, attack_type: str, *, subject: str = "s", motion_ratio: float | None = None, **flags: bool
) -> Presentation:
    return Presentation(key, SPOOF, attack_type, "clean", subject, score, **flags, motion_ratio=motion_ratio)


# ------------------------------------------------------------------------------------------- classify and rates


def test_classify_semantics() -> None:
    assert classify(real("a", 0.5), 0.5)  # a score equal to the threshold is bona fide
    assert not classify(real("b", 0.49), 0.5)
    assert not classify(real("c", 0.99, hard_reject=True), 0.5)
    assert not classify(real("d", 0.99, retake=True), 0.5)


def test_presentation_validation() -> None:
    with pytest.raises(ValueError, match="attack_type"):
        Presentation("x", REAL, "print", "clean", "s", 0.5)
    with pytest.raises(ValueError, match="attack_type"):
        Presentation("x", SPOOF, "none", "clean", "s", 0.5)
    with pytest.raises(ValueError, match="label"):
        Presentation("x", "fake", "print", "clean", "s", 0.5)


def hand_set() -> list[Presentation]:
    """At threshold 0.5 — print: 2 of 5 acquired accepted (one more was a retake); replay: 1 of 5;
    clean: 2 of 10 acquired rejected (one by score, one hard) plus 2 retakes; low light: 1 of 4 rejected."""
    ps = [attack(f"p{i}", s, "print") for i, s in enumerate([0.1, 0.2, 0.7, 0.8])]
    ps += [attack("p_hard", 0.9, "print", hard_reject=True), attack("p_retake", 0.95, "print", retake=True)]
    ps += [attack(f"r{i}", s, "replay") for i, s in enumerate([0.1, 0.2, 0.3, 0.4, 0.6])]
    ps += [real(f"c{i}", 0.9) for i in range(8)]
    ps += [real("c_low", 0.3), real("c_hard", 0.9, hard_reject=True)]
    ps += [real("c_retake1", 0.9, retake=True), real("c_retake2", 0.1, retake=True)]
    ps += [real(f"l{i}", s, condition="low_light") for i, s in enumerate([0.4, 0.6, 0.7, 0.8])]
    return ps


def test_rates_by_hand() -> None:
    rates = measure(hand_set(), 0.5)
    assert rates.rate(APCER, "print") == Rate(2, 5)
    assert rates.rate(APCER, "replay") == Rate(1, 5)
    assert rates.rate(ATTACK_RETAKE_RATE, "print") == Rate(1, 6)
    assert rates.rate(BPCER, "clean") == Rate(2, 10)
    assert rates.rate(RETAKE_RATE, "clean") == Rate(2, 12)
    assert rates.rate(BPCER_WITH_RETAKES, "clean") == Rate(4, 12)
    assert rates.rate(BPCER, "low_light") == Rate(1, 4)
    assert rates.rate(BPCER, ALL) == Rate(3, 14)
    assert rates.rate(BPCER_WITH_RETAKES, ALL) == Rate(5, 16)
    assert rates.worst_attack_type == "print"
    # ISO: the worst attack type (0.4), not the mean or the pooled APCER (3/10).
    assert rates.acer == pytest.approx((2 / 5 + 3 / 14) / 2)


# ----------------------------------------------------------------------------------------------------- folds


def population(n_subjects: int, *, unknown: int = 0) -> list[Presentation]:
    """Subjects with 1-4 real clips; every third subject also has 2 attacks; `unknown` clips with no subject."""
    ps: list[Presentation] = []
    for s in range(n_subjects):
        ps += [real(f"s{s}_r{i}", 0.8 + 0.01 * i, subject=f"s{s}") for i in range(1 + s % 4)]
        if s % 3 == 0:
            ps += [attack(f"s{s}_a{i}", 0.1 + 0.01 * s, "print", subject=f"s{s}") for i in range(2)]
    ps += [real(f"u{i}", 0.9, subject="") for i in range(unknown)]
    return ps


def test_folds_are_subject_disjoint_and_cover_all() -> None:
    ps = population(20, unknown=3)
    folds = subject_folds(ps, 5, seed=7)
    assert sorted(p.key for f in folds for p in f) == sorted(p.key for p in ps)
    owner: dict[str, int] = {}
    for i, fold in enumerate(folds):
        assert fold
        for p in fold:
            if p.subject:
                assert owner.setdefault(p.subject, i) == i
    assert len(owner) == 20
    # Attacks are spread: every calibration set sees some.
    for i in range(5):
        cal = calibration_pool(folds, i)
        assert any(p.label == SPOOF for p in cal)
        assert all(p.subject for p in cal)  # unknown subjects never calibrate
    assert [[p.key for p in f] for f in subject_folds(ps, 5, seed=7)] == [[p.key for p in f] for f in folds]


def test_folds_need_enough_subjects() -> None:
    with pytest.raises(ValueError):
        subject_folds(population(3), 5, seed=0)


# ----------------------------------------------------------------------------------------- threshold choice


def test_threshold_meets_apcer_target_with_lowest_bpcer() -> None:
    # 200 prints at 0.000..0.398, 100 replays at 0.300..0.498: at 1 %, 2 prints and 1 replay may pass.
    cal = [attack(f"p{i}", i * 0.002, "print") for i in range(200)]
    cal += [attack(f"r{i}", 0.3 + i * 0.002, "replay") for i in range(100)]
    cal += [real(f"b{i}", 0.35 + i * 0.01) for i in range(60)]
    choice = choose_threshold(cal, target_apcer=0.01)
    assert choice.binding_type == "replay"
    # The replay at 0.496 must be rejected; the next score up is the one replay let through (0.498).
    assert choice.threshold == pytest.approx((0.496 + 0.498) / 2)
    for t, rate in choice.cal_apcer.items():
        assert rate.value is not None and rate.value <= 0.01, t
    assert choice.cal_apcer["print"].n == 200 and choice.cal_apcer["replay"].n == 100
    # Lowest BPCER: just below the threshold the APCER target breaks.
    assert measure(cal, 0.496).rate(APCER, "replay").events == 2
    assert choice.cal_bpcer == Rate(15, 60)  # reals at 0.35..0.49
    assert not choice.met_target


def test_threshold_with_few_attacks_rejects_all_and_ignores_hard_rejects() -> None:
    cal = [attack("a1", 0.2, "print"), attack("a2", 0.3, "print"), attack("a3", 0.95, "print", hard_reject=True)]
    cal += [real(f"b{i}", 0.7 + i * 0.01) for i in range(10)]
    choice = choose_threshold(cal)
    assert choice.threshold == pytest.approx(0.5)  # between the attack at 0.3 and the real one at 0.7
    assert choice.cal_apcer["print"] == Rate(0, 3)
    assert choice.met_target and choice.cal_bpcer == Rate(0, 10)


def test_threshold_without_attacks_to_reject_is_zero() -> None:
    choice = choose_threshold([attack("a", 0.9, "print", hard_reject=True), real("b", 0.8)])
    assert choice.threshold == 0.0 and choice.binding_type is None


# ------------------------------------------------------------------------------------------------ intervals


def heterogeneous(n_subjects: int) -> list[Outcome]:
    """Each subject 10 real clips; even subjects 0 rejected, odd ones 2 (BPCER 10 %)."""
    out = []
    for s in range(n_subjects):
        for i in range(10):
            out.append(Outcome(real(f"s{s}_{i}", 0.1 if s % 2 and i < 2 else 0.9, subject=f"s{s}"), 0.5))
    return out


def test_bootstrap_contains_estimate_and_narrows() -> None:
    widths = []
    for n in (10, 40):
        ci = bootstrap_intervals(heterogeneous(n), n_boot=1000, seed=0).rates[(BPCER, ALL)]
        assert ci is not None and ci.low <= 0.1 <= ci.high
        widths.append(ci.high - ci.low)
    assert widths[1] < 0.7 * widths[0]


def test_bootstrap_is_seeded() -> None:
    a = bootstrap_intervals(heterogeneous(10), n_boot=200, seed=3)
    b = bootstrap_intervals(heterogeneous(10), n_boot=200, seed=3)
    assert a == b


def test_clopper_pearson_known_values() -> None:
    zero = clopper_pearson(0, 300)
    assert zero.low == 0.0 and zero.high == pytest.approx(1 - 0.025 ** (1 / 300), rel=1e-9)
    assert zero.high == pytest.approx(0.012221, abs=1e-6)
    assert zero_event_upper(300) == pytest.approx(0.009937, abs=1e-6)  # one-sided; the rule of three: 0.01
    five = clopper_pearson(5, 20)  # R: binom.test(5, 20)$conf.int
    assert (five.low, five.high) == (  # type: ignore[comparison-overlap]  # approx compares equal to floats
        pytest.approx(0.08657147, abs=1e-7),
        pytest.approx(0.49104587, abs=1e-7),
    )
    assert clopper_pearson(7, 7).high == 1.0


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 300), (1, 2), (5, 20), (17, 1000), (999, 1000)])
def test_clopper_pearson_bisection_agrees(k: int, n: int) -> None:
    exact, bisected = clopper_pearson(k, n), clopper_pearson_bisection(k, n)
    assert bisected.low == pytest.approx(exact.low, abs=1e-9)
    assert bisected.high == pytest.approx(exact.high, abs=1e-9)


# --------------------------------------------------------------------------------------------------- protocol


def test_evaluate_pools_out_of_fold_and_labels_deployment() -> None:
    ps = population(30, unknown=4)
    ev = evaluate(ps, Protocol(folds=5, seed=1, n_boot=200))
    assert Counter(p.key for f in subject_folds(ps, 5, 1) for p in f) == Counter(p.key for p in ps)
    assert sum(f.n_measured for f in ev.folds) == len(ps)
    assert ev.out_of_fold.rate(BPCER).n + ev.out_of_fold.rate(APCER).n == len(ps)
    # Prints score 0.10-0.37 and reals 0.80-0.83: every fold separates them perfectly.
    assert ev.out_of_fold.acer == 0.0
    assert 0.37 < ev.deployment.threshold < 0.8
    report = report_to_dict(ev)
    assert "in-sample" in report["deployment"]["note"]
    n_real = sum(p.label == REAL for p in ps)
    assert report["cross_validated"]["bpcer"]["all"]["rule_of_three"] == pytest.approx(3 / n_real, abs=1e-6)
    json.dumps(report)


def test_duplicate_keys_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        evaluate([real("a", 0.9, subject="x"), real("a", 0.9, subject="y")])


# ------------------------------------------------------------------------------------------------ the runner


MOVED = {"motion": {"live": False, "ratio": 1.4}}


@pytest.mark.parametrize(
    ("record", "flags"),
    [
        ({"reasons": []}, (False, False, False, None)),
        ({"reasons": ["SPOOF_SUSPECTED"]}, (False, False, False, None)),
        # Rigid motion is re-decided at each motion threshold: the ratio is what counts.
        ({"reasons": ["SPOOF_RIGID_MOTION"], "result": MOVED}, (False, False, False, 1.4)),
        ({"reasons": [], "result": {"motion": {"live": None, "ratio": 0.9}}}, (False, False, False, None)),
        ({"reasons": ["FACE_NOT_FOUND", "SPOOF_SUSPECTED"]}, (True, False, False, None)),
        ({"reasons": ["CAPTURE_TOO_DARK"]}, (False, False, True, None)),
        ({"reasons": [], "result": {"capture": {"retake": ["CAPTURE_TOO_DARK"]}}}, (False, False, True, None)),
        # No face in the dark: the stage asks for a retake (fusion.py), whatever the threshold.
        (
            {"reasons": ["CAPTURE_TOO_DARK", "FACE_NOT_FOUND"], "result": {"verdict": "retake"}},
            (False, True, True, None),
        ),
        ({"reasons": ["CAPTURE_TOO_BLURRY", "FACE_CHANGED_IN_VIDEO"]}, (True, False, True, None)),
        ({"reasons": [], "error": "VIDEO_TOO_LONG", "passive_score": None}, (False, True, False, None)),
    ],
)
def test_record_flags(record: dict[str, object], flags: tuple[bool, bool, bool, float | None]) -> None:
    assert record_flags(record) == flags


def test_motion_rule_spends_only_its_share_of_genuine_people() -> None:
    reals = [real(f"r{i}", 0.99, subject=f"s{i}", motion_ratio=1.0 + i / 10) for i in range(100)]  # 1.0 … 10.9
    still = [real(f"q{i}", 0.99, subject=f"t{i}") for i in range(100)]  # never moved: no motion evidence
    ratio = choose_motion_ratio(reals + still, target_bpcer=0.01)
    assert ratio == pytest.approx(1.2)  # 2 of the 200 genuine presentations fall below it
    assert sum(rigid_at(p, ratio) for p in reals + still) == 2
    assert choose_motion_ratio(still) == MOTION_RATIO_CAP  # no mover: the design value
    photo = attack("p", 0.99, "photo_hand", subject="x", motion_ratio=1.1)
    assert with_motion_rule(photo, ratio).hard_reject and not classify(with_motion_rule(photo, ratio), 0.5)
    dark = attack("d", 0.99, "photo_hand", subject="x", motion_ratio=1.1, capture_poor=True)
    assert with_motion_rule(dark, ratio).retake


def test_operating_point_counts_motion_rejects_before_choosing_the_passive_threshold() -> None:
    cal = [real(f"r{i}", 0.9 + i / 1000, subject=f"s{i}", motion_ratio=5.0) for i in range(100)]
    # A hand-held photo the passive score cannot tell from a face, but its motion can.
    cal += [attack(f"p{i}", 0.999, "photo_hand", subject=f"x{i}", motion_ratio=1.2) for i in range(20)]
    choice = choose_operating_point(cal, Protocol(target_apcer=0.01))
    assert choice.motion_min_ratio == MOTION_RATIO_CAP
    assert choice.threshold < 0.9  # no passive sacrifice needed: every photo is caught by its motion
    assert choice.cal_apcer["photo_hand"].events == 0


def test_a_poor_capture_is_a_retake_only_where_the_passive_score_fails() -> None:
    dark = real("d", 0.4, subject="s1", condition="low_light", capture_poor=True)
    assert retake_at(dark, 0.5) and not classify(dark, 0.5)
    assert not retake_at(dark, 0.3) and classify(dark, 0.3)
    rates = measure([dark, real("ok", 0.9, subject="s2", condition="low_light")], 0.5)
    assert rates.rate("retake_rate", "low_light").events == 1 and rates.rate("bpcer", "low_light").n == 1


def test_presentation_from_record() -> None:
    base = {"key": "k", "label": "spoof", "attack_type": "print", "subject": "", "condition": ""}
    p = presentation_from_record({**base, "passive_score": 0.3, "reasons": ["SPOOF_SUSPECTED"]})
    assert (p.score, p.subject, p.condition, p.hard_reject, p.retake) == (0.3, "", "unspecified", False, False)
    assert p.motion_ratio is None
    err = presentation_from_record({**base, "label": "real", "error": "MEDIA_CORRUPT", "passive_score": None})
    assert (err.attack_type, err.score, err.retake) == ("none", 0.0, True)


def test_evaluate_command_reproduces_golden(tmp_path: Path) -> None:
    out, md = tmp_path / "report.json", tmp_path / "table.md"
    args = ["evaluate", "--records", str(DATA / "eval_records.jsonl"), "--folds", "5", "--seed", "0"]
    assert eval_main([*args, "--out", str(out), "--markdown", str(md)]) == 0
    golden = json.loads((DATA / "eval_report.golden.json").read_text(encoding="utf-8"))
    assert json.loads(out.read_text(encoding="utf-8")) == golden
    table = md.read_text(encoding="utf-8")
    assert "| apcer | replay_screen_phone |" in table
    assert "#### Mode: challenge (deployed)" in table and "#### Mode: no challenge" in table


def test_review_floor_keeps_all_but_the_target_share_of_real_people_above_it() -> None:
    cal = [real(f"r{i}", 0.5 + i / 200, subject=f"s{i}") for i in range(100)]  # 0.500 … 0.995
    cal.append(attack("a", 0.97, "print", subject="x"))
    choice = choose_threshold(cal, target_apcer=0.01, target_bpcer=0.02)
    assert choice.threshold > 0.97
    assert choice.review_floor == pytest.approx(0.51)  # two of the 100 real scores lie below it
    assert sum(p.score < choice.review_floor for p in cal if p.label == REAL) == 2
    assert choose_review_floor(cal, threshold=0.3) == 0.3  # never above the pass threshold


def test_evaluate_writes_the_deployment_choice_as_a_calibration_entry(tmp_path: Path) -> None:
    cal = tmp_path / "calibration.json"
    args = ["evaluate", "--records", str(DATA / "eval_records.jsonl"), "--out", str(tmp_path / "r.json")]
    assert eval_main([*args, "--write-calibration", str(cal)]) == 0
    golden = json.loads((DATA / "eval_report.golden.json").read_text(encoding="utf-8"))
    (entry,) = json.loads(cal.read_text(encoding="utf-8"))["ensembles"].values()
    assert entry["ensemble"].startswith("minifasnet_v2@") and "+minifasnet_v1se@" in entry["ensemble"]
    deployed = golden["modes"][golden["deployed_mode"]]["deployment"]["choice"]
    assert entry["mode"] == "challenge" and entry["threshold"] == deployed["threshold"]
    assert entry["review_floor"] == deployed["review_floor"] <= entry["threshold"]
    assert entry["motion_min_ratio"] == 3.0
    assert entry["targets"]["apcer"] == 0.01


def test_under_challenge_a_static_attack_must_perform_its_drawn_challenge() -> None:
    photo = attack("photo.mp4", 0.99, "print", subject="x")
    drawn = drawn_challenge(photo.key, seed=0)
    assert drawn == drawn_challenge(photo.key, seed=0) and 2 <= len(drawn) <= 3  # seeded: same draw each run
    assert under_challenge(photo, [], seed=0).hard_reject
    performed = [ActionEvent(name, 1.0 + i, 20.0) for i, name in enumerate(drawn)]
    assert not under_challenge(photo, performed, seed=0).hard_reject
    backwards = [ActionEvent(name, 1.0 + i, 20.0) for i, name in enumerate(reversed(drawn))]
    assert under_challenge(photo, backwards, seed=0).hard_reject  # the right actions in the wrong order
    assert under_challenge(photo, performed[:1], seed=0).hard_reject  # one action is not enough
    # A replayed video can be prepared to show the actions; a genuine person performs them (and moves non-rigidly).
    assert not under_challenge(attack("v.mp4", 0.99, "replay_phone", subject="x"), [], 0, prepared=True).hard_reject
    person = real("p.mp4", 0.9, subject="s", motion_ratio=1.2)
    assert under_challenge(person, [], seed=0).motion_ratio is None


def test_video_replays_are_told_from_static_pictures() -> None:
    assert performs_challenge({"path": "replay_attack/x_highdef_video_adverse.mp4", "attack_type": "replay_tablet"})
    assert performs_challenge({"path": "generated/a.mp4", "attack_type": "replay_phone_video"})
    assert not performs_challenge({"path": "replay_attack/x_highdef_photo_adverse.mp4", "attack_type": "replay_tablet"})
    assert not performs_challenge({"path": "nuaa/print_0001.mp4", "attack_type": "print"})
    # A worn cut photo blinks through its holes and turns with the head; a monitor replay is a video.
    assert performs_challenge({"path": "generated_extra/cut_photo/a.mp4", "attack_type": "cut_photo"})
    assert performs_challenge({"path": "generated_extra/b.mp4", "attack_type": "replay_monitor_video"})


def test_the_committed_records_reproduce_the_published_evaluation_and_calibration(tmp_path: Path) -> None:
    """bench/results/liveness_eval.json and calibration.json come from the committed scored records, exactly."""
    results = Path(__file__).resolve().parents[3] / "bench/results"
    out, cal = tmp_path / "report.json", tmp_path / "calibration.json"
    args = ["evaluate", "--records", str(results / "liveness_eval.records.jsonl.gz"), "--out", str(out)]
    assert eval_main([*args, "--write-calibration", str(cal)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(
        (results / "liveness_eval.json").read_text(encoding="utf-8")
    )
    (entry,) = json.loads(cal.read_text(encoding="utf-8"))["ensembles"].values()
    deployed = PassiveCalibration.load(entry["ensemble"])
    assert (deployed.threshold, deployed.review_floor, deployed.motion_min_ratio) == (
        entry["threshold"],
        entry["review_floor"],
        entry["motion_min_ratio"],
    )


# ------------------------------------------------------------------------------------- ensembles from the records


def _record(key: str, by_model: dict[str, float]) -> dict[str, object]:
    models = {"detector": "d@1", **{f"antispoof:{n}": f"{n}@1" for n in by_model}}
    score = round(sum(by_model.values()) / len(by_model), 4)
    result = {"verdict": "pass", "passive_score": score, "passive_by_model": by_model, "models": models,
              "frame_scores": [{"t": 0.0, "score": score}]}  # fmt: skip
    return {"key": key, "label": "real", "passive_score": score, "reasons": [], "result": result}


def test_with_models_rescores_a_record_as_the_chosen_ensemble() -> None:
    record = _record("k", {"minifasnet_v2": 0.9, "minifasnet_v1se": 0.7, "antispoof_celeba_bin": 0.2})
    two = with_models(record, ["minifasnet_v2", "minifasnet_v1se"])
    assert two["passive_score"] == 0.8 and two["result"]["passive_score"] == 0.8  # type: ignore[index]
    assert sorted(two["result"]["models"]) == [  # type: ignore[index]
        "antispoof:minifasnet_v1se",
        "antispoof:minifasnet_v2",
        "detector",
    ]
    assert with_models(record, ["antispoof_celeba_bin"])["passive_score"] == 0.2
    assert record["passive_score"] == 0.6  # the input is not changed
    with pytest.raises(ValueError, match="not scored by other"):
        with_models(record, ["other"])
    # A media error, or no face scored: nothing to re-score.
    assert with_models({"key": "e", "passive_score": None, "error": "MEDIA_CORRUPT"}, ["x"])["passive_score"] is None


def test_compact_record_keeps_what_evaluate_reads() -> None:
    record = _record("k", {"minifasnet_v2": 0.9})
    kept = compact_record(record)
    assert "frame_scores" not in kept["result"]  # type: ignore[operator]
    assert presentation_from_record(kept) == presentation_from_record(record)
    assert kept["result"]["passive_by_model"] == {"minifasnet_v2": 0.9}  # type: ignore[index]


def test_the_committed_second_opinion_records_reproduce_the_published_comparison(tmp_path: Path) -> None:
    """bench/results/liveness_eval.second_opinion.json: the deployed pair, each CelebA-Spoof model alone and each
    added to the pair, from the same committed records (scored once with the liveness_eval_suri pack)."""
    results = Path(__file__).resolve().parents[3] / "bench/results"
    out = tmp_path / "cmp.json"
    sets = [
        "minifasnet_v2,minifasnet_v1se",
        "antispoof_celeba_bin",
        "minifasnet_v2,minifasnet_v1se,antispoof_celeba_bin",
        "suri_minifas",
        "minifasnet_v2,minifasnet_v1se,suri_minifas",
    ]
    args = ["compare", "--records", str(results / "liveness_eval.second_opinion.records.jsonl.gz"), "--out", str(out)]
    assert eval_main([*args, *(a for s in sets for a in ("--models", s))]) == 0
    published = json.loads((results / "liveness_eval.second_opinion.json").read_text(encoding="utf-8"))
    assert json.loads(out.read_text(encoding="utf-8")) == published
    # The deployed pair, re-scored here, gives the deployed calibration's operating point.
    deployed = json.loads((results / "liveness_eval.json").read_text(encoding="utf-8"))
    pair = published["ensembles"]["minifasnet_v2+minifasnet_v1se"]
    assert pair["threshold"] == deployed["modes"]["challenge"]["deployment"]["choice"]["threshold"]
    for alone in ("antispoof_celeba_bin", "suri_minifas"):
        assert pair["bpcer"]["clean"]["value"] < published["ensembles"][alone]["bpcer"]["clean"]["value"]
    # SURI added to the pair trades attacks for genuine people: fewer refused, more tablet replays through.
    with_suri = published["ensembles"]["minifasnet_v2+minifasnet_v1se+suri_minifas"]
    assert with_suri["bpcer"]["clean"]["value"] < pair["bpcer"]["clean"]["value"]
    assert with_suri["apcer"]["replay_tablet"]["value"] > 0.01 > pair["apcer"]["replay_tablet"]["value"]


def test_score_can_sample_key_frames_more_densely(tmp_path: Path, data_dir: Path) -> None:
    """`score --detect-every` measures a denser key-frame sampling on the same clip: more key
    frames at 0.5 s (at least twice as many), and the passive score averages up to the requested number."""
    index = tmp_path / "one.csv"
    index.write_text(f"path,label,attack_type,subject,condition\n{data_dir / LIVE_VIDEO},real,none,s1,clean\n")
    counts = {}
    for name, extra in (("default", []), ("dense", ["--detect-every", "0.5", "--passive-frames", "8"])):
        out = tmp_path / f"{name}.jsonl"
        assert eval_main(["score", "--index", str(index), "--root", str(data_dir), "--out", str(out), *extra]) == 0
        (record,) = [json.loads(line) for line in out.read_text().splitlines()]
        counts[name] = (len(record["result"]["frame_scores"]), len(record["result"]["passive_frames"]))
    (default_keys, default_used), (dense_keys, dense_used) = counts["default"], counts["dense"]
    assert dense_keys >= 2 * default_keys and default_used <= 5
    assert default_used < dense_used <= 8
