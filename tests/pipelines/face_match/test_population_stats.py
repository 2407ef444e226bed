"""The population calibration's statistics and score sets, on numbers whose answers are known.

Thresholds at a FAR (observed or from a fitted tail), rates with exact and family-bootstrap intervals, the
impostor / genuine / kin score sets, the family split, same-person links, population selection, the ethnicity
probe and the relative rule's margin trials.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from pipelines.face_match.metrics import MIN_TAIL_COUNT
from pipelines.face_match.population.ethnicity import east_asian_mask, fit_probe, probe_accuracy
from pipelines.face_match.population.faceset import LABELS, QUALITY, FaceSet
from pipelines.face_match.population.identities import linked_pairs, merge_families
from pipelines.face_match.population.kinship import MARGINS, margin_table, relative_trials
from pipelines.face_match.population.pairs import (
    Scores,
    genuine_scores,
    impostor_scores,
    kin_scores,
    read_relations,
    split_half,
)
from pipelines.face_match.population.populations import POPULATIONS
from pipelines.face_match.population.thresholds import MIN_EXCESSES, fit_tail, rate_at, threshold_at
from pipelines.liveness.evaluation.intervals import clopper_pearson


def faceset(embeddings: np.ndarray, **labels: list[str]) -> FaceSet:
    """A face set with the given labels ("" for the others); embeddings are L2-normalised."""
    n = len(embeddings)
    emb = np.asarray(embeddings, dtype=np.float32)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cols = {k: np.asarray(labels.get(k, [""] * n), dtype=str) for k in (*LABELS, QUALITY)}
    return FaceSet(cols, emb)


def random_faces(n: int, dim: int = 16, seed: int = 0, **labels: list[str]) -> FaceSet:
    return faceset(np.random.default_rng(seed).normal(size=(n, dim)), **labels)


# -- thresholds -----------------------------------------------------------------------------------------------


EXP_LOC, EXP_SCALE = 0.1, 0.05


@pytest.fixture(scope="module")
def exponential() -> np.ndarray:
    """200,000 impostor scores with an exponential tail: P(score >= t) = exp(-(t - loc) / scale)."""
    return EXP_LOC + np.random.default_rng(17).exponential(EXP_SCALE, 200_000)


def exp_quantile(far: float) -> float:
    return EXP_LOC - EXP_SCALE * float(np.log(far))


@pytest.mark.parametrize("far", [1e-2, 1e-3, 1e-4])
def test_threshold_is_observed_where_the_impostors_suffice(exponential: np.ndarray, far: float) -> None:
    t = threshold_at(exponential, far)
    expected = far * len(exponential)
    assert expected >= MIN_TAIL_COUNT
    assert t.method == "empirical" and t.n_impostor == len(exponential) and t.expected_exceedances == expected
    # Exactly floor(far * n) impostors reach the threshold (continuous scores: no ties).
    assert int((exponential >= t.threshold).sum()) == int(np.floor(expected))
    assert t.threshold == pytest.approx(exp_quantile(far), abs=0.03)


def test_threshold_is_extrapolated_from_the_tail_where_they_do_not(exponential: np.ndarray) -> None:
    far = 1e-5  # 2 expected exceedances among 200,000
    t = threshold_at(exponential, far)
    assert t.method == "tail_fit" and t.expected_exceedances == pytest.approx(2.0)
    # 2,000 excesses fix the exponential scale to ~2 %: the extrapolated threshold is within 3 % of the truth.
    assert t.threshold == pytest.approx(exp_quantile(far), rel=0.03)
    _, share, sigma, xi = fit_tail(exponential)
    assert share == pytest.approx(0.01, abs=1e-4) and sigma == pytest.approx(EXP_SCALE, rel=0.05) and xi < 0.05
    # Stricter FARs give higher thresholds across the switch from observed to fitted.
    ladder = [threshold_at(exponential, f).threshold for f in (1e-3, 1e-4, 1e-5, 1e-6)]
    assert ladder == sorted(ladder) and len(set(ladder)) == 4


def test_tail_fit_never_claims_a_bounded_tail() -> None:
    """Uniform scores end at 1; the shape is floored at 0 (exponential), so the threshold goes beyond the end."""
    u = np.random.default_rng(0).uniform(size=100_000)
    t = threshold_at(u, 1e-6)
    assert t.method == "tail_fit" and fit_tail(u)[3] == 0.0
    assert t.threshold > 1.0


def test_heavy_tail_is_fitted_with_a_positive_shape() -> None:
    xi, sigma = 0.2, 0.05
    p = np.random.default_rng(0).uniform(size=200_000)
    gpd = sigma / xi * ((1 - p) ** (-xi) - 1)
    fitted_xi = fit_tail(gpd)[3]
    assert 0.1 < fitted_xi < 0.3
    analytic = sigma / xi * (1e-6 ** (-xi) - 1)
    assert threshold_at(gpd, 1e-6).threshold == pytest.approx(analytic, rel=0.1)


def test_too_few_impostors_for_a_tail_fit_are_refused() -> None:
    """999 impostors at 1e-2: 9.99 expected exceedances call for a tail fit, and ~10 excesses cannot make one."""
    scores = np.random.default_rng(1).normal(size=1000)
    assert threshold_at(scores, 1e-2).method == "empirical"  # exactly MIN_TAIL_COUNT expected
    with pytest.raises(ValueError, match="too few to fit a tail"):
        threshold_at(scores[:999], 1e-2)
    assert int((scores[:999] > np.quantile(scores[:999], 0.99)).sum()) < MIN_EXCESSES
    with pytest.raises(ValueError, match="no impostors: too few to fit a tail"):
        threshold_at(np.zeros(0, np.float32), 1e-4)


# -- rates with intervals -------------------------------------------------------------------------------------


def width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


def test_rate_counts_at_or_above_or_below_with_an_exact_interval() -> None:
    values = np.asarray([0.1, 0.2, 0.3, 0.3, 0.5, 0.9], np.float32)
    units = np.arange(6)
    scores = Scores(values, units, units + 6)
    r = rate_at(scores, 0.3)
    assert (r.count, r.n, r.rate) == (4, 6, 4 / 6)
    cp = clopper_pearson(4, 6)
    assert r.binomial_95 == (cp.low, cp.high) and cp.low < r.rate < cp.high
    below = rate_at(scores, 0.3, above=False)
    assert (below.count, below.rate) == (2, 2 / 6)
    d = r.to_dict()
    assert d["count"] == 4 and d["n"] == 6 and d["rate"] == round(4 / 6, 8)
    assert d["binomial_95"] == [round(cp.low, 8), round(cp.high, 8)]
    empty = rate_at(Scores.empty(), 0.3)
    assert empty.n == 0 and np.isnan(empty.rate) and all(np.isnan(empty.family_bootstrap_95))


def test_family_bootstrap_widens_when_pairs_share_families() -> None:
    # 40 families, every pair of them: the accepts all involve three families.
    a, b = np.triu_indices(40, k=1)
    clustered = Scores(np.where(a < 3, 0.9, 0.1).astype(np.float32), a, b)
    r = rate_at(clustered, 0.5)
    assert r.count == 3 * 39 - 3
    assert r.binomial_95[0] <= r.rate <= r.binomial_95[1]
    assert r.family_bootstrap_95[0] <= r.rate <= r.family_bootstrap_95[1]
    assert width(r.family_bootstrap_95) > 4 * width(r.binomial_95)
    # The same accept rate over pairs that share no family: the bootstrap is about as wide as the binomial.
    n = 2000
    hits = np.random.default_rng(0).uniform(size=n) < r.rate
    independent = rate_at(Scores(np.where(hits, 0.9, 0.1).astype(np.float32), np.arange(n), np.arange(n, 2 * n)), 0.5)
    assert independent.family_bootstrap_95[0] <= independent.rate <= independent.family_bootstrap_95[1]
    assert width(independent.family_bootstrap_95) < 2 * width(independent.binomial_95)
    # Deterministic for a seed, different for another.
    assert rate_at(clustered, 0.5).family_bootstrap_95 == r.family_bootstrap_95
    assert rate_at(clustered, 0.5, seed=1).family_bootstrap_95 != r.family_bootstrap_95


def test_family_bootstrap_of_within_family_pairs_resamples_families() -> None:
    # Genuine-style scores (both sides one family): 50 families of 10 pairs, 5 families refuse all theirs.
    units = np.repeat(np.arange(50), 10)
    values = np.where(units < 5, 0.1, 0.9).astype(np.float32)
    r = rate_at(Scores(values, units, units), 0.5, above=False)
    assert (r.count, r.n) == (50, 500)
    assert r.family_bootstrap_95[0] <= 0.1 <= r.family_bootstrap_95[1]
    assert width(r.family_bootstrap_95) > 2 * width(r.binomial_95)


# -- score sets -----------------------------------------------------------------------------------------------


def test_impostor_scores_pair_every_two_families_never_one_with_itself() -> None:
    families = ["a", "a", "a", "b", "b", "c"]
    faces = random_faces(6, family=families)
    s = impostor_scores(faces)
    assert len(s) == 15 - 3 - 1  # all pairs less those within a (3) and within b (1)
    assert np.all(s.unit_a != s.unit_b)
    sims = faces.embeddings @ faces.embeddings.T
    expected = sorted(float(sims[i, j]) for i in range(6) for j in range(i + 1, 6) if families[i] != families[j])
    assert sorted(s.values.tolist()) == pytest.approx(expected, abs=1e-6)


def test_genuine_scores_pair_images_of_one_subject() -> None:
    subjects = ["p", "p", "p", "q", "r", "r"]
    faces = random_faces(6, subject=subjects, family=["f1", "f1", "f1", "f1", "f2", "f2"])
    s = genuine_scores(faces)
    assert len(s) == 3 + 1  # C(3, 2) of p, C(2, 2) of r; q has one image
    assert np.array_equal(s.unit_a, s.unit_b)
    assert s.values[-1] == pytest.approx(float(faces.embeddings[4] @ faces.embeddings[5]), abs=1e-6)
    assert len(genuine_scores(random_faces(3, subject=["x", "y", "z"]))) == 0


def test_kin_scores_are_grouped_by_relation(tmp_path: Path) -> None:
    path = tmp_path / "relations.csv"
    path.write_text(
        "source,family,subject_a,subject_b,relation\n"
        "tskinface,t:1,t:1-F,t:1-M,spouse\n"
        "tskinface,t:1,t:1-F,t:1-S,parent_child\n"
        "tskinface,t:1,t:1-M,t:1-S,parent_child\n"
        "fiw,fiw:F1,fiw:F1/MID1,fiw:F1/MID9,siblings\n",  # MID9 has no image: skipped
        encoding="utf-8",
    )
    relations = read_relations(path)
    assert relations[0] == ("t:1-F", "t:1-M", "spouse") and len(relations) == 4
    subjects = ["t:1-F", "t:1-F", "t:1-M", "t:1-S", "t:1-S", "t:1-S", "fiw:F1/MID1"]
    faces = random_faces(7, subject=subjects, family=["t:1"] * 6 + ["fiw:F1"])
    kin = kin_scores(faces, relations)
    assert sorted(kin) == ["parent_child", "spouse"]
    assert len(kin["spouse"]) == 2 * 1 and len(kin["parent_child"]) == 2 * 3 + 1 * 3
    f, m = faces.embeddings[0:2], faces.embeddings[2]
    assert sorted(kin["spouse"].values.tolist()) == pytest.approx(sorted((f @ m).tolist()), abs=1e-6)


def test_split_half_is_stable_family_disjoint_and_balanced() -> None:
    families = [f"fam{i // 3}" for i in range(3000)]
    faces = random_faces(3000, dim=4, family=families)
    half = split_half(faces)
    for fam in set(families):
        assert len(set(half[faces["family"] == fam].tolist())) == 1
    assert 0.45 < half.mean() < 0.55
    # A family's side depends on its name only: not on the order or the company of the other faces.
    order = np.random.default_rng(0).permutation(3000)
    assert np.array_equal(split_half(faces.subset(order)), half[order])
    assert np.array_equal(split_half(faces.subset(np.arange(3000) < 30)), half[:30])
    assert not np.array_equal(split_half(faces, salt="another"), half)


# -- same-person links --------------------------------------------------------------------------------------


def test_merge_families_merges_linked_families_transitively() -> None:
    faces = random_faces(6, id=["a1", "a2", "b1", "c1", "d1", "e1"], family=["A", "A", "B", "C", "D", "E"])
    merged = merge_families(faces, [("a2", "b1"), ("c1", "b1"), ("zz", "d1"), ("a1", "a2")])
    # A-B and B-C merge into one family named after the first; an unknown id and a link within A change nothing.
    assert merged["family"].tolist() == ["A", "A", "A", "A", "D", "E"]
    assert np.array_equal(merged.embeddings, faces.embeddings) and np.array_equal(merged["id"], faces["id"])
    assert faces["family"].tolist() == ["A", "A", "B", "C", "D", "E"]  # the input is left as it was
    assert len(impostor_scores(merged)) == 15 - 6  # the four merged faces are no longer impostors of each other


def test_linked_pairs_need_both_recognizers_and_two_families() -> None:
    e = np.eye(4, dtype=np.float32)
    # First recognizer: x1, y1, z1 all within cos 0.99 of each other; x1 and z1 are one family.
    first = faceset(
        np.stack([e[0], e[0] + 0.1 * e[1], e[0] + 0.1 * e[2], e[3]]),
        id=["x1", "y1", "z1", "w1"],
        family=["X", "Y", "X", "W"],
    )
    assert linked_pairs(first, first, 0.9, 0.9) == [("x1", "y1"), ("y1", "z1")]  # never x1-z1 (one family)
    # Second recognizer (other row order, no w1): only y1 and z1 agree.
    second = faceset(np.stack([e[1], e[1], e[2]]), id=["z1", "y1", "x1"], family=["X", "Y", "X"])
    assert linked_pairs(first, second, 0.9, 0.9) == [("y1", "z1")]
    assert linked_pairs(first, second, 0.9, 1.01) == []  # each recognizer's own threshold applies


# -- populations, ethnicity, kinship --------------------------------------------------------------------------


def test_populations_select_quality_adults_east_asian_and_age() -> None:
    faces = random_faces(
        10,
        source=[
            "utkface",
            "utkface",
            "utkface",
            "tskinface",
            "tskinface",
            "fiw",
            "utkface",
            "asian_faces",
            "utkface",
            "utkface",
        ],
        role=["", "", "", "S", "F", "MID1", "", "", "", ""],
        age=["60", "30", "60", "", "", "", "70", "", "49", "50"],
        quality_flags=["", "", "pose", "", "", "", "", "", "", ""],
    )
    east_asian = np.asarray([True, True, True, True, True, True, False, True, True, True])
    selected = {p.name: p.select(faces, east_asian).tolist() for p in POPULATIONS}
    assert selected == {
        "east_asian_adult": [True, True, False, False, True, True, False, True, True, True],
        "east_asian_50plus": [True, False, False, False, False, False, False, False, False, True],
    }


def clusters(n: int, direction: int, seed: int, dim: int = 8) -> np.ndarray:
    """``n`` embeddings near the basis vector ``direction``."""
    rng = np.random.default_rng(seed)
    return np.asarray(np.eye(dim)[direction] + 0.2 * rng.normal(size=(n, dim)))


def test_fit_probe_separates_two_clusters() -> None:
    x = np.vstack([clusters(100, 0, 1), clusters(100, 1, 2)])
    y = np.r_[np.ones(100), np.zeros(100)]
    probe = fit_probe(x, y)
    test = np.vstack([clusters(50, 0, 3), clusters(50, 1, 4)])
    p = probe.probability(test)
    assert (p[:50] > 0.5).all() and (p[50:] < 0.5).all()


def test_east_asian_mask_labels_unlabelled_families_by_their_mean() -> None:
    emb = np.vstack(
        [
            clusters(20, 0, 1),
            clusters(20, 1, 2),  # utkface: asian near e0, white near e1
            clusters(2, 0, 3),
            clusters(1, 1, 4),  # family t:1, no label: two of three near e0
            clusters(1, 0, 5),
            clusters(2, 1, 6),  # family t:2, no label: one of three near e0
            clusters(1, 1, 7),
            clusters(1, 0, 8),  # labelled: east_asian near e1, white near e0
        ]
    )
    faces = faceset(
        emb,
        source=["utkface"] * 40 + ["tskinface"] * 6 + ["fiw", "asian_faces"],
        ethnicity=["asian"] * 20 + ["white"] * 20 + [""] * 6 + ["east_asian", "white"],
        family=[f"u{i}" for i in range(40)] + ["t:1"] * 3 + ["t:2"] * 3 + ["fiw:F1", "a:1"],
    )
    mask = east_asian_mask(faces)
    assert mask[:20].all() and not mask[20:40].any()
    assert mask[40:43].tolist() == [True, True, True]  # the one near e1 goes with its family
    assert mask[43:46].tolist() == [False, False, False]
    assert mask[46:].tolist() == [True, False]  # a source's label is kept, whatever the embedding
    acc = probe_accuracy(faces)
    assert acc == {"asian_recall": 1.0, "non_asian_recall": 1.0, "n_asian": 20, "n_non_asian": 20}


def test_east_asian_mask_without_probe_data() -> None:
    labelled = random_faces(
        4, source=["fiw", "asian_faces", "lfw", "lfw"], ethnicity=["east_asian", "east_asian", "white", "asian"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no probe is fitted when every face is labelled
        assert east_asian_mask(labelled).tolist() == [True, True, False, True]
        assert probe_accuracy(labelled) == {
            "asian_recall": None,
            "non_asian_recall": None,
            "n_asian": 0,
            "n_non_asian": 0,
        }
    # Unlabelled faces and no utkface faces of both classes to fit the probe on: an error, not "non-Asian".
    unlabelled = random_faces(3, source=["tskinface", "utkface", "utkface"], ethnicity=["", "asian", "asian"])
    with pytest.raises(ValueError, match="1 faces have no ethnicity label"):
        east_asian_mask(unlabelled)
    assert probe_accuracy(unlabelled)["asian_recall"] is None


def test_relative_trials_and_margin_table() -> None:
    e = np.eye(3)
    relative = 0.88 * e[0] + np.sqrt(1 - 0.88**2) * e[1]  # cos 0.88 to A
    emb = np.vstack([np.tile(e[0], (3, 1)), np.tile(relative, (3, 1)), np.tile(e[2], (2, 1))])
    faces = faceset(emb, subject=["A"] * 3 + ["R"] * 3 + ["S"] * 2, family=["f"] * 8)
    relations = [("A", "R", "parent_child"), ("A", "S", "spouse"), ("A", "nobody", "siblings")]
    genuine, fraud = relative_trials(faces, relations, accept=0.5)
    # Genuine: 3x2 ordered image pairs of A, and of R (each the other's relative); claimed 1, relative 0.88.
    assert len(genuine) == 12 and np.allclose(genuine, 0.12, atol=1e-6)
    # Fraud: each of R's 3 images claims each of A's 3 (0.88), against R's own template (1); and vice versa.
    assert len(fraud) == 18 and np.allclose(fraud, -0.12, atol=1e-6)
    strict_genuine, strict_fraud = relative_trials(faces, relations, accept=0.9)
    assert len(strict_genuine) == 12 and len(strict_fraud) == 0  # 0.88 is below the accept band
    table = margin_table(genuine, fraud)
    assert [row["margin"] for row in table] == list(MARGINS)
    assert [row["genuine_to_review"] for row in table] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert all(row["fraud_caught"] == 1.0 and row["fraud_trials"] == 18 for row in table)
    assert all(row["fraud_caught"] is None for row in margin_table(strict_genuine, strict_fraud))


# -- AS-norm ---------------------------------------------------------------------------------------------------


def test_as_norm_discounts_a_face_that_resembles_the_whole_cohort() -> None:
    """Same raw score, different faces: the one close to many cohort faces (μ high) is normalised lower."""
    from pipelines.face_match.population.asnorm import cohort_stats, normalise

    cohort = clusters(300, 0, seed=1)
    cohort = cohort / np.linalg.norm(cohort, axis=1, keepdims=True)
    typical, atypical = np.eye(8)[0], np.eye(8)[5]
    stats = cohort_stats(np.stack([typical, atypical]), cohort, k=50)
    assert stats.mean[0] > 0.8 and stats.mean[1] < 0.4  # the top-50 of a random direction still reach ~0.3
    same_raw = np.asarray([0.5, 0.5])
    scored = normalise(same_raw, stats, stats, np.asarray([0, 1]), np.asarray([0, 1]))
    assert scored[0] < scored[1]
    # A cohort face identical to the face itself is that face, not a member: it is left out of the top-k.
    with_self = cohort_stats(typical[None, :], np.vstack([typical, cohort]), k=50)
    assert with_self.mean[0] == pytest.approx(stats.mean[0])
