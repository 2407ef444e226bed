"""One embedding pooling (pipelines/face_match/pooling.py): every caller gets the numbers it computed before.

The expected values are the formulas each caller had inline before the pooling moved to one module (the decision
runner's enrolment template, FaceMatcher.compare's probe, the offline proxy operator template, proxy_auth's elder
probe, the kinship study's templates), applied to real faces of the dev set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.decision.runner import Certifier
from pipelines.face_match import FaceMatcher, FaceObservation, QualityFlag, cosine
from pipelines.face_match.pooling import pool_embeddings, pooled_embedding, pooled_template, pooling_mask
from pipelines.face_match.population.kinship import _templates
from pipelines.media import load_image

PERSON = "Queen_Elizabeth_II"


@pytest.fixture(scope="module")
def probes(matcher: FaceMatcher, faces_dir: Path) -> list[FaceObservation]:
    """Five real faces of one person; the second marked low quality, as a blurred video frame would be."""
    paths = sorted((faces_dir / "lfw" / PERSON).glob("*.jpg"))[:5]
    assert len(paths) == 5
    found = [matcher.observe(load_image(p), allow_multiple=True) for p in paths]
    low = dataclasses.replace(found[1].quality, flags=(QualityFlag.BLURRY,))
    found[1] = dataclasses.replace(found[1], quality=low)
    return found


def _former_template(probes: list[FaceObservation]) -> np.ndarray:
    """The decision runner's `_pool` before: quality-passing frames (or all), float32 mean, unit length."""
    usable = [p.embedding for p in probes if p.quality.ok] or [p.embedding for p in probes]
    pooled: np.ndarray = np.mean(usable, axis=0).astype(np.float32)
    pooled /= max(float(np.linalg.norm(pooled)), 1e-12)
    return pooled


def test_the_low_quality_frame_is_left_out(probes: list[FaceObservation]) -> None:
    assert pooling_mask(probes) == [True, False, True, True, True]
    assert pooling_mask([probes[1]]) == [True]  # none passes: all are pooled


def test_enrolment_template_is_unchanged(probes: list[FaceObservation], matcher: FaceMatcher) -> None:
    expected = _former_template(probes)
    template = pooled_template(probes)
    assert template is not None and template.dtype == np.float32
    assert np.array_equal(template, expected)
    # The runner's own path, as the worker stores it.
    stub = SimpleNamespace(matcher=matcher)
    stored = Certifier._pool(stub, probes)  # type: ignore[arg-type]
    assert stored is not None and np.array_equal(stored.embedding, expected)
    assert stored.model == str(matcher.recognizer.version)
    assert Certifier._pool(stub, []) is None  # type: ignore[arg-type]
    # Only low-quality frames: all of them are pooled, as before.
    both_low = [probes[1], dataclasses.replace(probes[3], quality=probes[1].quality)]
    only_low = pooled_template(both_low)
    assert only_low is not None and np.array_equal(only_low, _former_template(both_low))
    assert np.array_equal(only_low, pool_embeddings([probes[1].embedding, probes[3].embedding], unit=True))


def test_match_probe_is_unchanged(probes: list[FaceObservation], matcher: FaceMatcher) -> None:
    expected = np.mean([p.embedding for i, p in enumerate(probes) if i != 1], axis=0)
    assert np.array_equal(pooled_embedding(probes), expected)
    result = matcher.compare(probes[0], probes)
    assert result.similarity == cosine(probes[0].embedding, expected)


def test_operator_template_and_elder_probe_are_unchanged(probes: list[FaceObservation]) -> None:
    faces = [p.embedding for p in probes]
    # service/features/proxy/offline.py: every best frame, float32 mean, unit length.
    former = np.mean(faces, axis=0).astype(np.float32)
    former = former / max(float(np.linalg.norm(former)), 1e-12)
    assert np.array_equal(pool_embeddings(faces, unit=True), former)
    assert float(np.linalg.norm(pool_embeddings(faces, unit=True))) == pytest.approx(1.0, abs=1e-6)
    # proxy_auth/decision.py: every elder frame, plain mean.
    assert np.array_equal(pool_embeddings(faces, unit=False), np.mean(faces, axis=0))


def test_kinship_study_templates_are_unchanged(probes: list[FaceObservation]) -> None:
    """pipelines/face_match/population/kinship.py: a FaceSet's float32 rows, mean, unit length."""
    rows = np.stack([p.embedding for p in probes]).astype(np.float32)
    former = rows.mean(axis=0)
    former = np.asarray(former / max(float(np.linalg.norm(former)), 1e-12))
    assert np.array_equal(_templates(SimpleNamespace(embeddings=rows), np.arange(len(rows))), former)  # type: ignore[arg-type]
