"""The committed population thresholds reproduce from the face cache (where this machine has it).

The cache (scripts/fetch_face_data.sh, then one embedding pass that caches ``embeddings/<recognizer>.npz``) holds
6,593 faces; recalibrating from the cached embeddings must give exactly the numbers in calibration.json.
"""

from __future__ import annotations

import json

import pytest

from bench.face_data.cache import default_cache
from pipelines.face_match import FaceMatcher
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH
from pipelines.face_match.population.calibrate import calibrate_populations
from pipelines.face_match.population.dataset import FETCH_HINT, INDEX, embedding_key, load_population_data
from pipelines.face_match.population.faceset import FaceSet


def test_committed_population_thresholds_reproduce_from_the_face_cache(matcher: FaceMatcher) -> None:
    cache = default_cache()
    key = matcher.thresholds.recognizer
    assert key == "mobilefacenet_foamliu@b7120c095d60+flip"
    index = cache / INDEX
    npz = cache / "embeddings" / f"{key.replace('@', '_').replace('+', '_')}.npz"
    if not index.is_file() or not npz.is_file():
        pytest.skip(
            f"face cache {cache} lacks {INDEX} or embeddings/{npz.name}: fill it with {FETCH_HINT}, then embed it "
            "once with python bench/face_match.py --population-data (minutes)"
        )
    _, meta = FaceSet.load(npz)
    digest = embedding_key(matcher, index)
    if meta.get("recognizer") != key or meta.get("index") != digest:
        pytest.skip(f"{npz} was embedded for another index or recognizer: re-embedding the cache takes minutes")
    committed = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))["recognizers"][key]["populations"]
    got = calibrate_populations(load_population_data(matcher, cache))
    for name in ("east_asian_adult", "east_asian_50plus"):
        assert got[name]["thresholds"] == committed[name]["thresholds"], name
        # Everything else measured is reproduced too (the date aside).
        for field, value in committed[name].items():
            if field != "calibrated_on":
                assert got[name][field] == value, (name, field)
