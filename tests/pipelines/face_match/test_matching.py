from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.face_match import Band, FaceMatcher, QualityFlag
from pipelines.face_match.evaluation import embed_paths, pair_scores, read_pairs
from pipelines.face_match.metrics import roc_auc
from pipelines.media import load_image
from pipelines.reasons import ReasonCode
from tests.pipelines.face_match.conftest import DevFaces

POWELL = "lfw/Colin_Powell/Colin_Powell_0001.jpg"
POWELL_2 = "lfw/Colin_Powell/Colin_Powell_0048.jpg"
ZHU = "lfw/Zhu_Rongji/Zhu_Rongji_0001.jpg"


def test_embeddings_are_deterministic_and_unit_length(matcher: FaceMatcher, faces_dir: Path) -> None:
    image = load_image(faces_dir / POWELL)
    a = matcher.observe(image).embedding
    b = matcher.observe(image.copy()).embedding
    np.testing.assert_array_equal(a, b)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)


def test_genuine_pairs_score_above_impostors_on_all_dev_pairs(
    matcher: FaceMatcher, dev_faces: DevFaces, faces_dir: Path
) -> None:
    pairs = read_pairs(faces_dir / "pairs.csv")
    genuine, impostor = pair_scores(pairs, dev_faces.embeddings)
    assert len(genuine) + len(impostor) == len(pairs)
    assert roc_auc(genuine, impostor) >= 0.99
    assert np.median(genuine) > matcher.thresholds.accept > np.median(impostor)


def test_insightface_pack_separates_genuine_from_impostors(insightface_matcher: FaceMatcher, faces_dir: Path) -> None:
    # The SCRFD-2.5G detector is several times slower: every tenth pair keeps the suite short.
    pairs = read_pairs(faces_dir / "pairs.csv")[::10]
    emb, errors = embed_paths(insightface_matcher, faces_dir, [p for pr in pairs for p in (pr.path_a, pr.path_b)])
    assert len(errors) <= 2, errors
    genuine, impostor = pair_scores(pairs, emb)
    assert len(genuine) > 50 and len(impostor) > 40
    assert roc_auc(genuine, impostor) >= 0.99
    assert np.median(genuine) > insightface_matcher.thresholds.accept > np.median(impostor)


def test_same_person_accepts_and_different_person_rejects(matcher: FaceMatcher, faces_dir: Path) -> None:
    ref = matcher.observe(load_image(faces_dir / POWELL))
    same = matcher.compare(ref, [matcher.observe(load_image(faces_dir / POWELL_2))])
    other = matcher.compare(ref, [matcher.observe(load_image(faces_dir / ZHU))])
    assert same.band is Band.ACCEPT and same.reasons == []
    assert other.band is Band.REJECT and ReasonCode.FACE_MISMATCH in other.reasons
    assert same.models["recognizer"].startswith("mobilefacenet_foamliu@")
    assert same.thresholds.accept_far == "1e-4" and same.thresholds.review_far == "1e-2"


def test_several_probe_frames_are_fused_with_per_frame_evidence(matcher: FaceMatcher, faces_dir: Path) -> None:
    ref = matcher.observe(load_image(faces_dir / POWELL))
    probe_paths = [p for p in sorted((faces_dir / "lfw/Colin_Powell").glob("*.jpg")) if p.name not in POWELL][:4]
    probes = matcher.observe_many([load_image(p) for p in probe_paths])
    result = matcher.compare(ref, probes)
    assert len(result.frames) == len(probes)
    sims = [f.similarity for f in result.frames]
    assert all(f.used for f in result.frames)
    # Pooling the frames' embeddings is at least as good as the average single frame.
    assert result.similarity >= np.mean(sims) - 1e-6
    assert result.band is Band.ACCEPT
    assert result.to_dict()["frames"][0]["similarity"] == pytest.approx(sims[0], abs=1e-5)


def test_low_quality_probe_is_flagged_and_never_auto_accepted(matcher: FaceMatcher, faces_dir: Path) -> None:
    ref_img = load_image(faces_dir / POWELL)
    ref = matcher.observe(ref_img)
    blurred = cv2.GaussianBlur(load_image(faces_dir / POWELL_2), (0, 0), 4)
    dark = (load_image(faces_dir / POWELL_2).astype(np.float32) * 0.25).astype(np.uint8)
    for probe_img, flag in ((blurred, QualityFlag.BLURRY), (dark, QualityFlag.TOO_DARK)):
        probe = matcher.observe(probe_img)
        assert flag in probe.quality.flags
        result = matcher.compare(ref, [probe])
        assert ReasonCode.FACE_LOW_QUALITY in result.reasons
        assert result.band is not Band.ACCEPT
    # A low-quality reference (the card photo, say) is flagged the same way.
    small = cv2.resize(ref_img, (60, 60))
    small_obs = matcher.observe(cv2.copyMakeBorder(small, 90, 90, 90, 90, cv2.BORDER_CONSTANT, value=(128, 128, 128)))
    assert QualityFlag.TOO_SMALL in small_obs.quality.flags


def test_pose_is_measured_from_landmarks(matcher: FaceMatcher, faces_dir: Path) -> None:
    image = load_image(faces_dir / POWELL)
    frontal = matcher.observe(image).quality
    mirrored = matcher.observe(np.ascontiguousarray(image[:, ::-1])).quality
    assert abs(frontal.yaw_deg) < 35
    # Mirroring the image mirrors yaw and roll.
    assert mirrored.yaw_deg == pytest.approx(-frontal.yaw_deg, abs=4)
    assert mirrored.roll_deg == pytest.approx(-frontal.roll_deg, abs=3)
