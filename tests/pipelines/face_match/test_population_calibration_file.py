"""The calibration file with populations: merging LFW entries and population entries, deploying the strictest
threshold per FAR, naming the population that set it, and the committed file's own consistency."""

from __future__ import annotations

import copy
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipelines.face_match.calibrate import lfw_population, write_entry, write_populations
from pipelines.face_match.calibration import (
    DEFAULT_CALIBRATION_PATH,
    FAR_KEYS,
    LFW,
    Calibration,
    deployed_thresholds,
    recognizer_key,
)

FLIP_KEY = "mobilefacenet_foamliu@b7120c095d60+flip"  # has populations in the committed file
LEGACY_KEY = "w600k_mbf_int8@7caa7fb0ad6c"  # LFW only, written before populations existed


def committed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def calib_copy(tmp_path: Path) -> Path:
    out = tmp_path / "calibration.json"
    shutil.copyfile(DEFAULT_CALIBRATION_PATH, out)
    return out


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def population(t: tuple[float, float, float], name: str = "synthetic") -> dict[str, Any]:
    return {"description": name, "thresholds": dict(zip(FAR_KEYS, t, strict=True))}


def strictest(populations: dict[str, dict[str, Any]]) -> tuple[dict[str, float], dict[str, str]]:
    """Per FAR, the highest threshold and its population (computed here, independently of the code under test)."""
    best: dict[str, tuple[float, str]] = {}
    for name, pop in populations.items():
        for far, t in pop["thresholds"].items():
            if far not in best or float(t) > best[far][0]:
                best[far] = (float(t), name)
    return {k: v[0] for k, v in best.items()}, {k: v[1] for k, v in best.items()}


def next_version(previous: str) -> str:
    today = dt.date.today().isoformat()
    return f"{today}.{int(previous.rsplit('.', 1)[1]) + 1}" if previous.startswith(today) else f"{today}.1"


def test_deployed_thresholds_are_the_strictest_per_far_and_name_their_population() -> None:
    pops = {
        "lfw": population((0.25, 0.33, 0.40)),
        "b": population((0.30, 0.31, 0.50)),
        "a": population((0.20, 0.45, 0.50)),  # ties at 1e-4 with b: the first name in order keeps it
    }
    thresholds, origin = deployed_thresholds(pops)
    assert thresholds == {"1e-2": 0.30, "1e-3": 0.45, "1e-4": 0.50}
    assert origin == {"1e-2": "b", "1e-3": "a", "1e-4": "a"}


def test_committed_entries_deploy_their_strictest_population() -> None:
    data = committed()
    with_populations = [k for k, e in data["recognizers"].items() if "populations" in e]
    assert FLIP_KEY in with_populations
    for key in with_populations:
        entry = data["recognizers"][key]
        assert recognizer_key(entry["recognizer"], entry["flip_tta"]) == key
        thresholds, origin = strictest(entry["populations"])
        assert entry["thresholds"] == {k: round(thresholds[k], 6) for k in FAR_KEYS}
        assert entry["threshold_population"] == origin
        # The LFW population is the entry's own LFW calibration.
        at_far = entry["stats"]["at_far"]
        assert entry["populations"][LFW]["thresholds"] == {k: at_far[k]["threshold"] for k in FAR_KEYS}
        for name, pop in entry["populations"].items():
            if name != LFW:
                assert set(pop["method"].values()) <= {"empirical", "tail_fit"}
                observed = {k: m == "empirical" for k, m in pop["method"].items()}
                assert observed == {k: v == "observed" for k, v in pop["far_observed_or_extrapolated"].items()}


def test_write_populations_replaces_populations_keeps_lfw_and_redeploys(calib_copy: Path) -> None:
    before = read(calib_copy)
    new = {"east_asian_adult": population((0.31, 0.42, 0.70)), "east_asian_50plus": population((0.45, 0.40, 0.60))}
    version = write_populations(FLIP_KEY, new, calib_copy)
    after = read(calib_copy)
    assert version == after["version"] == next_version(before["version"])
    entry = after["recognizers"][FLIP_KEY]
    assert entry["populations"][LFW] == before["recognizers"][FLIP_KEY]["populations"][LFW]
    assert entry["populations"]["east_asian_adult"] == new["east_asian_adult"]
    assert list(entry["populations"]) == sorted(entry["populations"])
    assert entry["thresholds"] == {"1e-2": 0.45, "1e-3": 0.42, "1e-4": 0.70}
    assert entry["threshold_population"] == {
        "1e-2": "east_asian_50plus",
        "1e-3": "east_asian_adult",
        "1e-4": "east_asian_adult",
    }
    # Other recognizers are untouched.
    for key, other in before["recognizers"].items():
        if key != FLIP_KEY:
            assert after["recognizers"][key] == other
    # A second write the same day bumps the serial again.
    assert write_populations(FLIP_KEY, new, calib_copy) == next_version(version)


def test_write_populations_on_an_lfw_only_entry_makes_lfw_a_population(calib_copy: Path) -> None:
    legacy = committed()["recognizers"][LEGACY_KEY]
    assert "populations" not in legacy
    new = {"east_asian_50plus": population((0.10, 0.30, 0.25))}  # below LFW at 1e-2 and 1e-4, above at 1e-3
    write_populations(LEGACY_KEY, new, calib_copy)
    entry = read(calib_copy)["recognizers"][LEGACY_KEY]
    assert entry["populations"][LFW]["thresholds"] == legacy["thresholds"]
    assert entry["populations"][LFW]["impostor_pairs"] == legacy["stats"]["n_impostor"]
    assert entry["thresholds"] == legacy["thresholds"] | {"1e-3": 0.30}
    assert entry["threshold_population"] == {"1e-2": LFW, "1e-3": "east_asian_50plus", "1e-4": LFW}


def test_write_populations_refuses_a_recognizer_without_an_entry(calib_copy: Path) -> None:
    text = calib_copy.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="no entry for nobody@0: calibrate it on LFW pairs first"):
        write_populations("nobody@0", {"x": population((0.1, 0.2, 0.3))}, calib_copy)
    assert calib_copy.read_text(encoding="utf-8") == text


def lfw_entry(thresholds: tuple[float, float, float]) -> dict[str, Any]:
    """What ``calibrate`` returns for the default pack with flip (its LFW thresholds and stats)."""
    at_far = {
        k: {"threshold": t, "method": "empirical", "tar": 0.99, "measured_far": 0.0}
        for k, t in zip(FAR_KEYS, thresholds, strict=True)
    }
    return {
        "recognizer": "mobilefacenet_foamliu@b7120c095d60",
        "detector": "yunet_2023mar@8f2383e4dd3c",
        "flip_tta": True,
        "thresholds": dict(zip(FAR_KEYS, thresholds, strict=True)),
        "stats": {"n_genuine": 10, "n_impostor": 1000, "at_far": at_far},
        "images_without_face": 0,
        "data": {"pairs": "pairs.csv"},
        "calibrated_on": "2030-01-01",
    }


def test_write_entry_replaces_lfw_and_keeps_the_other_populations(calib_copy: Path) -> None:
    before = read(calib_copy)["recognizers"][FLIP_KEY]
    entry = lfw_entry((0.5, 0.2, 0.3))
    original = copy.deepcopy(entry)
    write_entry(entry, calib_copy)
    assert entry == original  # the caller's entry is not rewritten with the deployed thresholds
    after = read(calib_copy)["recognizers"][FLIP_KEY]
    assert after["stats"] == entry["stats"] and after["calibrated_on"] == "2030-01-01"
    assert after["populations"][LFW] == lfw_population(entry, entry["thresholds"])
    for name in ("east_asian_adult", "east_asian_50plus"):
        assert after["populations"][name] == before["populations"][name]
    thresholds, origin = strictest(after["populations"])
    assert after["thresholds"] == {k: round(thresholds[k], 6) for k in FAR_KEYS}
    assert origin["1e-2"] == LFW and after["thresholds"]["1e-2"] == 0.5
    assert after["threshold_population"] == origin


def test_write_entry_starts_a_file_and_the_version_counts_per_day(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"version": "2000-01-01.7", "recognizers": {}}), encoding="utf-8")
    assert write_entry(lfw_entry((0.2, 0.3, 0.4)), path) == next_version("2000-01-01.7")
    data = read(path)
    entry = data["recognizers"][FLIP_KEY]
    assert list(entry["populations"]) == [LFW]
    assert entry["threshold_population"] == dict.fromkeys(FAR_KEYS, LFW)
    fresh = tmp_path / "new.json"
    assert write_entry(lfw_entry((0.2, 0.3, 0.4)), fresh).endswith(".1")


def test_calibration_thresholds_carry_the_population_that_set_them(calib_copy: Path) -> None:
    write_populations(FLIP_KEY, {"east_asian_50plus": population((0.6, 0.1, 0.2))}, calib_copy)
    cal = Calibration.load(calib_copy)
    th = cal.thresholds("mobilefacenet_foamliu@b7120c095d60", True, accept_far="1e-4", review_far="1e-2")
    entry = cal.recognizers[FLIP_KEY]
    assert th.accept == entry["thresholds"]["1e-4"] and th.review == 0.6
    assert th.accept_population == entry["threshold_population"]["1e-4"] == "east_asian_adult"
    assert th.review_population == "east_asian_50plus"
    assert th.calibration_version == cal.version and th.recognizer == FLIP_KEY
    # An entry without populations: its thresholds are LFW's.
    legacy = cal.thresholds("w600k_mbf_int8@7caa7fb0ad6c", False, accept_far="1e-4", review_far="1e-2")
    assert legacy.accept_population == legacy.review_population == LFW
