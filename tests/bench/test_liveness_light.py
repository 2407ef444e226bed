"""The screen-light challenge's figures (bench/liveness_light.py): reproduced from the committed records, and the
threshold rule on its own."""

from __future__ import annotations

import json
from pathlib import Path

from bench.liveness_light import choose_threshold, main, pack_samples, read_records, unpack_samples
from pipelines.liveness.light import COLOURS, N_STEPS, LightSequence
from pipelines.liveness.light_response import DECODE_FROM, ColourSample, LightRules

RESULTS = Path(__file__).resolve().parents[2] / "bench/results"


def test_the_report_and_the_shipped_threshold_come_from_the_committed_records(tmp_path: Path) -> None:
    out = tmp_path / "light.json"
    args = ["evaluate", "--samples", str(RESULTS / "liveness_light.samples.jsonl.gz")]
    args += ["--sensitivity", str(RESULTS / "liveness_light.sensitivity.jsonl.gz"), "--out", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report == json.loads((RESULTS / "liveness_light.json").read_text(encoding="utf-8"))
    # What the checker loads is what the evaluation chose, and its held-out chance meets the stated target.
    assert LightRules.load().threshold == report["chance"]["deployed_threshold"]
    assert report["chance"]["held_out"]["all"]["clopper_pearson_95"][1] <= 0.01


def test_the_threshold_is_the_smallest_that_keeps_chance_under_the_target() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, float("-inf")] + [0.1] * 95  # 100 draws
    assert choose_threshold(scores, 0.02) == 0.701  # two of 100 allowed: 0.9 and 0.8 reach it, 0.7 does not
    assert sum(s >= 0.701 for s in scores) == 2
    assert choose_threshold(scores, 0.0) == 0.901
    assert choose_threshold([float("-inf")] * 10, 0.01) == 0.0
    # Where too few draws can read "seen" at all, the analysis' own floor is the threshold in force, and is said.
    assert choose_threshold([float("-inf")] * 10, 0.01, DECODE_FROM) == DECODE_FROM
    assert choose_threshold(scores, 0.02, 0.75) == 0.75


def test_the_sensitivity_records_were_made_for_the_sequences_the_service_issues() -> None:
    records = read_records([RESULTS / "liveness_light.sensitivity.jsonl.gz"])
    sequences = [LightSequence.from_dict(r["sequence"]) for r in records]
    assert {len(s.colours) for s in sequences} == {N_STEPS}
    assert {c for s in sequences for c in s.colours} == set(COLOURS)


def test_samples_keep_their_form_through_the_records() -> None:
    samples = [ColourSample(0.5, (10.0, 20.0, 30.0), (1.0, 2.0, 3.0)), ColourSample(0.67, (11.0, 21.0, 31.0), None)]
    assert unpack_samples(pack_samples(samples)) == samples
