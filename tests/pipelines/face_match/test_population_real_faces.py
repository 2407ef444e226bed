"""Population calibration end to end on real faces: embed a population directory (cached per recognizer and
index), merge linked families, label ethnicity, calibrate on one half and measure on the other, write the
calibration file, and read back thresholds that name their population (see population_dir for the data)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.decision import Evidence, decide
from pipelines.errors import PipelineError
from pipelines.face_match import FaceMatcher
from pipelines.face_match.calibrate import write_populations
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, FAR_KEYS, LFW, Calibration
from pipelines.face_match.matcher import MatchConfig
from pipelines.face_match.metrics import MIN_TAIL_COUNT
from pipelines.face_match.population import dataset
from pipelines.face_match.population.calibrate import FARS, calibrate_populations
from pipelines.face_match.population.dataset import PopulationData, embeddings_for, load_population_data
from pipelines.face_match.population.faceset import FaceSet, embed_rows
from pipelines.face_match.population.pairs import split_half
from pipelines.face_match.population.populations import POPULATIONS
from pipelines.media import load_image
from pipelines.reasons import ReasonCode
from tests.pipelines.face_match import population_dir

ZHU = ("lfw/Zhu_Rongji/Zhu_Rongji_0001.jpg", "lfw/Zhu_Rongji/Zhu_Rongji_0003.jpg")


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> tuple[Path, list[dict[str, str]]]:
    return population_dir.shared(tmp_path_factory.getbasetemp(), faces_dir)


@pytest.fixture(scope="module")
def data(matcher: FaceMatcher, population: tuple[Path, list[dict[str, str]]]) -> PopulationData:
    return load_population_data(matcher, population[0])


@pytest.fixture(scope="module")
def calibrated(data: PopulationData) -> dict[str, dict[str, Any]]:
    return calibrate_populations(data)


def column(rows: list[dict[str, str]], **where: str) -> set[str]:
    return {r["id"] for r in rows if all(r[k] == v for k, v in where.items())}


def test_population_data_is_embedded_linked_and_labelled(
    matcher: FaceMatcher, population: tuple[Path, list[dict[str, str]]], data: PopulationData
) -> None:
    root, rows = population
    faces = data.faces
    assert data.failures == 1 and len(faces) == len(rows) - 1
    assert population_dir.NO_FACE_ID not in set(faces["id"].tolist())
    assert np.allclose(np.linalg.norm(faces.embeddings, axis=1), 1.0, atol=1e-4)
    assert faces.quality_ok().mean() > 0.9
    # The embeddings are cached beside the data, keyed by recognizer, index digest and detector.
    cached, meta = FaceSet.load(root / "embeddings" / "mobilefacenet_foamliu_b7120c095d60_flip.npz")
    digest = f"{hashlib.sha256((root / 'index.csv').read_bytes()).hexdigest()[:16]}:{matcher.detector.version}"
    assert meta == {"recognizer": matcher.thresholds.recognizer, "index": digest, "failures": "1"}
    assert np.array_equal(cached["id"], faces["id"]) and np.allclose(cached.embeddings, faces.embeddings)
    # Zhu Rongji's two subjects are linked: one family (the links.csv line naming an unknown id is ignored).
    zhu = np.char.startswith(faces["subject"].astype(str), "lfw:Zhu_Rongji/")
    assert zhu.sum() == 7 and set(faces["family"][zhu].tolist()) == {population_dir.ZHU_A}
    assert set(cached["family"][zhu].tolist()) == {population_dir.ZHU_A, population_dir.ZHU_B}
    # Labelled faces keep their label; the unlabelled family gets one label for all its members.
    ids = faces["id"].tolist()
    east = dict(zip(ids, data.east_asian.tolist(), strict=True))
    assert all(east[i] for i in column(rows, source="asian_faces") if i in east)
    assert all(east[i] for i in column(rows, source="utkface", ethnicity="asian"))
    assert not any(east[i] for i in column(rows, source="utkface", ethnicity="other"))
    assert len({east[i] for i in column(rows, source="tskinface")}) == 1
    assert len(data.relations) == 4 and data.root == root


def cross_family_scores(faces: FaceSet, member: np.ndarray) -> np.ndarray:
    """Cosine of every two faces of different families among ``member`` (computed here, not by pairs.py)."""
    emb, fam = faces.embeddings[member], faces["family"][member]
    sims = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    return np.asarray(sims[i, j][fam[i] != fam[j]])


def test_thresholds_come_from_one_half_and_are_measured_on_the_other(
    data: PopulationData, calibrated: dict[str, dict[str, Any]]
) -> None:
    faces = data.faces
    held_out = split_half(faces)
    assert list(calibrated) == [p.name for p in POPULATIONS]
    json.dumps(calibrated, allow_nan=False)  # the entries go into a JSON file: no NaN anywhere
    for pop in POPULATIONS:
        entry = calibrated[pop.name]
        member = pop.select(faces, data.east_asian)
        calib = cross_family_scores(faces, member & ~held_out)
        evaluation = cross_family_scores(faces, member & held_out)
        assert entry["calibration_half"]["faces"] + entry["evaluation_half"]["faces"] == int(member.sum())
        assert entry["calibration_half"]["impostor_pairs"] == len(calib)
        assert entry["evaluation_half"]["impostor_pairs"] == len(evaluation)
        thresholds = [entry["thresholds"][k] for k in FARS]
        assert thresholds == sorted(thresholds)
        for key, far in FARS.items():
            t = entry["thresholds"][key]
            observed = far * len(calib) >= MIN_TAIL_COUNT
            assert entry["method"][key] == ("empirical" if observed else "tail_fit")
            assert entry["far_observed_or_extrapolated"][key] == ("observed" if observed else "extrapolated (tail fit)")
            # Counts at the written threshold, give or take the scores within its rounding (6 decimals).
            if observed:  # exactly floor(far * n) calibration impostors reach it
                assert abs(int((calib >= t).sum()) - int(far * len(calib))) <= int((np.abs(calib - t) < 1e-6).sum())
            accept = entry["evaluation_half"]["impostor_accept"][key]
            assert accept["n"] == len(evaluation)
            assert abs(accept["count"] - int((evaluation >= t).sum())) <= int((np.abs(evaluation - t) < 1e-6).sum())
            assert accept["binomial_95"][0] <= accept["rate"] <= accept["binomial_95"][1]
            assert accept["family_bootstrap_95"][0] <= accept["rate"] <= accept["family_bootstrap_95"][1]
    adult, older = calibrated["east_asian_adult"], calibrated["east_asian_50plus"]
    # The 50+ faces are the aged ones (asian_faces rows); the adults add the utkface Asians, not the children.
    assert set(older["calibration_half"]["faces_by_source"]) | set(older["evaluation_half"]["faces_by_source"]) == {
        "asian_faces"
    }
    halves = (adult["calibration_half"]["faces_by_source"], adult["evaluation_half"]["faces_by_source"])
    by_source = {s: sum(h.get(s, 0) for h in halves) for s in ("utkface", "tskinface")}
    assert by_source["utkface"] == int(((faces["source"] == "utkface") & data.east_asian & faces.quality_ok()).sum())
    parents = (faces["source"] == "tskinface") & np.isin(faces["role"], ["F", "M"])
    assert by_source["tskinface"] == int((parents & data.east_asian & faces.quality_ok()).sum())  # no children
    probe = adult["ethnicity_probe"]
    assert probe["n_asian"] == int(((faces["source"] == "utkface") & (faces["ethnicity"] == "asian")).sum())
    assert probe["n_non_asian"] == int(((faces["source"] == "utkface") & (faces["ethnicity"] == "other")).sum())
    assert 0.0 <= probe["asian_recall"] <= 1.0 and 0.0 <= probe["non_asian_recall"] <= 1.0


def test_written_thresholds_are_the_strictest_and_reach_the_decision(
    matcher: FaceMatcher, calibrated: dict[str, dict[str, Any]], faces_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "calibration.json"
    shutil.copyfile(DEFAULT_CALIBRATION_PATH, out)
    before = json.loads(out.read_text(encoding="utf-8"))
    key = matcher.thresholds.recognizer
    version = write_populations(key, calibrated, out)
    after = json.loads(out.read_text(encoding="utf-8"))
    assert version == after["version"] != before["version"]
    entry = after["recognizers"][key]
    assert set(entry["populations"]) == {LFW, "east_asian_adult", "east_asian_50plus"}
    assert entry["populations"][LFW] == before["recognizers"][key]["populations"][LFW]
    for name in ("east_asian_adult", "east_asian_50plus"):
        assert entry["populations"][name]["thresholds"] == calibrated[name]["thresholds"]
    for far in FAR_KEYS:
        values = {name: pop["thresholds"][far] for name, pop in entry["populations"].items()}
        assert entry["thresholds"][far] == max(values.values())
        assert values[entry["threshold_population"][far]] == max(values.values())
    # The matcher reads the deployed thresholds and the populations that set them; the decision reports them.
    cal = Calibration.load(out)
    th = cal.thresholds(matcher.recognizer.version, True, accept_far="1e-4", review_far="1e-2")
    assert (th.accept, th.review) == (entry["thresholds"]["1e-4"], entry["thresholds"]["1e-2"])
    assert (th.accept_population, th.review_population) == (
        entry["threshold_population"]["1e-4"],
        entry["threshold_population"]["1e-2"],
    )
    assert th.calibration_version == version
    recalibrated = FaceMatcher(matcher.pack, matcher.config, cal)
    a, b = (recalibrated.observe(load_image(faces_dir / p)) for p in ZHU)
    result = recalibrated.compare(a, [b])
    assert result.thresholds == th
    decision = decide(Evidence(id_card=None, liveness=None, card_match=result))
    assert decision.thresholds["face_accept"] == th.accept
    assert decision.thresholds["face_accept_population"] == th.accept_population
    assert decision.thresholds["face_review_population"] == th.review_population
    assert decision.thresholds["calibration"] == version


def small_dir(root: Path, faces_dir: Path) -> list[dict[str, str]]:
    """Two faces of Zhu Rongji and the image without a face."""
    every = population_dir.index_rows(faces_dir)
    rows = [r for r in every if r["subject"] == population_dir.ZHU_A][:2]
    rows.append(next(r for r in every if r["id"] == population_dir.NO_FACE_ID))
    return population_dir.build(root, faces_dir, rows)


def test_embeddings_cache_is_reused_and_keyed_by_recognizer_and_index(
    matcher: FaceMatcher, faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "small"
    with pytest.raises(PipelineError) as missing:
        embeddings_for(matcher, root)
    assert missing.value.reason is ReasonCode.MODEL_UNAVAILABLE and "fetch_face_data.sh" in (missing.value.detail or "")
    rows = small_dir(root, faces_dir)
    faces, errors = embed_rows(matcher, root, rows)
    assert errors == {population_dir.NO_FACE_ID: ReasonCode.FACE_NOT_FOUND.value}
    assert faces["id"].tolist() == [r["id"] for r in rows[:2]] and faces["gender"].tolist() == ["", ""]
    first = embeddings_for(matcher, root)
    assert np.array_equal(first.embeddings, faces.embeddings)
    calls: list[int] = []
    real_embed = embed_rows

    def counting(*args: Any) -> tuple[FaceSet, dict[str, str]]:
        calls.append(1)
        return real_embed(*args)

    monkeypatch.setattr(dataset, "embed_rows", counting)
    again = embeddings_for(matcher, root)
    assert calls == [] and np.array_equal(again.embeddings, first.embeddings)
    # Another recognizer key (no flip) gets its own file, and other embeddings.
    plain = FaceMatcher(matcher.pack, MatchConfig(flip_tta=False))
    other = embeddings_for(plain, root)
    assert calls == [1] and (root / "embeddings" / "mobilefacenet_foamliu_b7120c095d60.npz").is_file()
    assert not np.allclose(other.embeddings, first.embeddings, atol=1e-3)
    # A changed index is embedded again.
    lines = (root / "index.csv").read_text(encoding="utf-8").splitlines()
    (root / "index.csv").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    changed = embeddings_for(matcher, root)
    assert calls == [1, 1] and changed["id"].tolist() == [rows[0]["id"]]
