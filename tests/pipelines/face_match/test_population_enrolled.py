"""Thresholds on a deployment's enrolled pensioners: pairs, halves, look-alikes and what cannot be measured, on
embeddings whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.face_match.population.enrolled import (
    EnrolledFaces,
    calibrate_enrolled,
    halves,
    impostor_pairs,
    look_alikes,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


def people(n: int, seed: int = 0, dim: int = 32) -> EnrolledFaces:
    emb = unit(np.random.default_rng(seed).normal(size=(n, dim)))
    return EnrolledFaces(emb, [f"P{i}" for i in range(n)], [None] * n)


def test_pairs_leave_out_one_household_and_each_person_with_themself() -> None:
    faces = people(5)
    faces = EnrolledFaces(faces.templates, faces.people, ["H", "H", None, None, "K"])
    pairs = impostor_pairs(faces, np.arange(5))
    assert len(pairs) == 10 - 1  # all 10 pairs but the household's one
    assert {(int(a), int(b)) for a, b in zip(pairs.unit_a, pairs.unit_b, strict=True)}.isdisjoint({(0, 1)})
    expected = float(faces.templates[2] @ faces.templates[4])
    got = [v for a, b, v in zip(pairs.unit_a, pairs.unit_b, pairs.values, strict=True) if (a, b) == (2, 4)]
    assert got == [pytest.approx(expected)]
    assert len(impostor_pairs(faces, np.arange(1))) == 0


def test_halves_are_stable_and_balanced() -> None:
    ids = [f"E{i:05d}" for i in range(2000)]
    split = halves(ids)
    assert split.tolist() == halves(ids).tolist() and 0.45 < split.mean() < 0.55
    assert halves(ids[:10]).tolist() == split[:10].tolist()  # one person's half does not depend on the others


def test_look_alikes_are_every_pair_at_or_above_the_threshold_scored_in_blocks() -> None:
    faces = people(300, seed=1)
    t = faces.templates.copy()
    t[7] = t[250]  # one face under two accounts
    t[11] = unit((t[40] + 0.05 * np.random.default_rng(2).normal(size=t.shape[1]))[None, :])[0]
    faces = EnrolledFaces(t, faces.people, faces.households)
    found = look_alikes(faces, 0.9, block=64)
    assert found["count"] == 2
    assert [(p["a"], p["b"]) for p in found["pairs"]] == [("P7", "P250"), ("P11", "P40")]
    assert found["pairs"][0]["similarity"] == pytest.approx(1.0)
    sims = t @ t.T
    brute = int(np.sum(np.triu(sims >= 0.5, k=1)))
    assert look_alikes(faces, 0.5, block=37)["count"] == brute


def test_calibration_measures_what_the_pairs_allow_and_says_what_it_cannot() -> None:
    entry = calibrate_enrolled(people(240, seed=3), accept_threshold=0.9)
    cal, ev = entry["calibration_half"], entry["evaluation_half"]
    assert cal["people"] + ev["people"] == 240 and cal["impostor_pairs"] > 5000
    assert entry["method"] == {"1e-2": "empirical", "1e-3": "tail_fit", "1e-4": "tail_fit"}
    assert entry["thresholds"]["1e-2"] < entry["thresholds"]["1e-3"] < entry["thresholds"]["1e-4"]
    assert ev["impostor_accept"]["1e-2"]["rate"] == pytest.approx(0.01, abs=0.005)
    few = calibrate_enrolled(people(30, seed=4), accept_threshold=0.9)
    assert few["thresholds"] == {} and set(few["not_measured"]) == {"1e-2", "1e-3", "1e-4"}


def test_one_template_per_person_and_household() -> None:
    with pytest.raises(ValueError, match="one template"):
        EnrolledFaces(np.zeros((2, 4), np.float32), ["a"], [None, None])


def test_the_face_band_of_a_stored_result_is_the_templates_else_the_cards() -> None:
    from pipelines.face_match.population.enrolled import face_band

    assert face_band({"template_match": {"band": "review"}, "card_match": {"band": "accept"}}) == "review"
    assert face_band({"template_match": None, "card_match": {"band": "accept"}}) == "accept"
    assert face_band({"decision": "reject"}) is None and face_band(None) is None


def test_genuine_outcomes_per_age_band_with_intervals() -> None:
    from pipelines.face_match.population.enrolled import genuine_outcomes

    out = genuine_outcomes([(65, "accept"), (65, "review"), (85, "accept"), (None, "accept"), (90, None)])
    assert out["60-69"] == {"accepted": 1, "n": 2, "rate": 0.5, "clopper_pearson_95": [0.0126, 0.9874]}
    assert out["80+"]["n"] == 1 and out["unknown"]["n"] == 1 and out["all"]["n"] == 4
    assert "70-79" not in out  # no certification there: no rate claimed
