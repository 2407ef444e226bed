"""Action challenges on the dev videos, against hand-checked labels (tests/pipelines/liveness/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.packs import ModelPack
from pipelines.face_match import FaceMatcher
from pipelines.liveness import ActionConfig, LivenessChecker, LivenessConfig, LivenessResult
from pipelines.liveness.actions import ActionEvent, verify_sequence
from pipelines.reasons import ReasonCode

ALL = "blink,turn_left,turn_right,nod,open_mouth"


def _matches(t: float, spans: list[list[float]], slack: float = 0.2) -> bool:
    return any(a - slack <= t <= b + slack for a, b in spans)


@pytest.fixture(scope="session")
def apfol(shared_checker: LivenessChecker, spoof_videos: Path) -> LivenessResult:
    # Asking for a blink makes the checker sample densely, as in production.
    return shared_checker.check(spoof_videos / "apfol_real2.webm", "blink")


@pytest.mark.parametrize("video", ["videos/liveportrait_driving_d13.mp4", "videos/liveportrait_source_s18.mp4"])
def test_blinks_found_at_labelled_times(
    shared_checker: LivenessChecker, data_dir: Path, action_labels: dict[str, dict[str, object]], video: str
) -> None:
    label = action_labels[video]
    spans: list[list[float]] = label["events"]["blink"]  # type: ignore[index]
    result = shared_checker.check(data_dir / video, "blink")
    assert result.actions[0].detected and result.passed
    blinks = [e for e in result.events if e.name == "blink"]
    found = [s for s in spans if any(_matches(e.t, [s]) for e in blinks)]
    assert len(found) >= len(spans) - 1, (spans, blinks)
    false = [e for e in blinks if not _matches(e.t, spans)]
    assert len(false) <= 1, false
    # Talking faces: no head turn, nod or wide-open mouth is invented.
    assert not [e for e in result.events if e.name != "blink"]


def test_head_turns_found(apfol: LivenessResult, action_labels: dict[str, dict[str, object]]) -> None:
    events: dict[str, list[list[float]]] = action_labels["spoof/videos/apfol_real2.webm"]["events"]  # type: ignore[assignment]
    for name in ("turn_left", "turn_right"):
        found = [e for e in apfol.events if e.name == name]
        hits = [s for s in events[name] if any(_matches(e.t, [s]) for e in found)]
        assert len(hits) == len(events[name]), (name, found)
        assert all(e.amplitude >= 15 for e in found)


def test_challenge_in_order_passes(shared_checker: LivenessChecker, spoof_videos: Path) -> None:
    result = shared_checker.check(spoof_videos / "apfol_real2.webm", ["turn_left", "turn_right", "nod"])
    assert result.passed, result.reasons
    times = [a.t for a in result.actions]
    assert all(a.detected for a in result.actions)
    assert times == sorted(times)  # type: ignore[type-var]
    d = result.to_dict()["actions"]
    assert [a["name"] for a in d] == ["turn_left", "turn_right", "nod"]
    assert all(isinstance(a["t"], float) and a["amplitude"] > 0 for a in d)


def test_challenge_in_wrong_order_fails(shared_checker: LivenessChecker, spoof_videos: Path) -> None:
    # The person nods once (≈4.3 s), after both left turns: "nod then turn left" did not happen.
    result = shared_checker.check(spoof_videos / "apfol_real2.webm", "nod,turn_left")
    assert not result.passed
    assert result.reasons == [ReasonCode.CHALLENGE_WRONG_ORDER]


def test_missing_action_fails(shared_checker: LivenessChecker, data_dir: Path) -> None:
    result = shared_checker.check(data_dir / "videos/liveportrait_driving_d13.mp4", "blink,turn_left")
    assert ReasonCode.CHALLENGE_MISSING_ACTION in result.reasons
    assert [a.detected for a in result.actions] == [True, False]


def test_open_mouth_found_and_grin_is_not(
    shared_checker: LivenessChecker, data_dir: Path, action_labels: dict[str, dict[str, object]]
) -> None:
    spans: list[list[float]] = action_labels["videos/liveportrait_driving_d3.mp4"]["events"]["open_mouth"]  # type: ignore[index]
    result = shared_checker.check(data_dir / "videos/liveportrait_driving_d3.mp4", "open_mouth")
    assert result.actions[0].detected
    assert result.actions[0].t is not None and _matches(result.actions[0].t, spans)
    grin = shared_checker.check(data_dir / "videos/liveportrait_driving_d0.mp4", "open_mouth")
    assert grin.reasons == [ReasonCode.CHALLENGE_MISSING_ACTION]


def test_verify_sequence_rules() -> None:
    events = [ActionEvent("turn_left", 1.0, 20), ActionEvent("blink", 2.0, 0.4), ActionEvent("turn_left", 3.0, 25)]
    ev, reasons = verify_sequence(["turn_left", "blink"], events)
    assert reasons == [] and [e.t for e in ev] == [1.0, 2.0]
    # The second left turn after the blink satisfies "blink, turn_left".
    ev, reasons = verify_sequence(["blink", "turn_left"], events)
    assert reasons == [] and [e.t for e in ev] == [2.0, 3.0]
    _, reasons = verify_sequence(["turn_left", "blink", "blink"], events)
    assert reasons == [ReasonCode.CHALLENGE_WRONG_ORDER]
    _, reasons = verify_sequence(["nod"], events)
    assert reasons == [ReasonCode.CHALLENGE_MISSING_ACTION]


def test_best_frames_avoid_turned_heads(apfol: LivenessResult) -> None:
    # The person turns ±40° many times; the frames kept for face matching face the camera.
    assert len(apfol.best_frames) == 3
    for b in apfol.best_frames:
        assert abs(b.observation.quality.yaw_deg) <= 15 and abs(b.observation.quality.pitch_deg) <= 15


def test_mirrored_recording_swaps_left_and_right(
    pack: ModelPack, matcher: FaceMatcher, spoof_videos: Path, apfol: LivenessResult
) -> None:
    config = LivenessConfig(check_duplicates=False, actions=ActionConfig(mirrored=True))
    mirrored = LivenessChecker(pack, config, matcher=matcher).check(spoof_videos / "apfol_real2.webm", "blink")
    swap = {"turn_left": "turn_right", "turn_right": "turn_left"}
    plain = [(swap[e.name], round(e.t, 2)) for e in apfol.events if e.name in swap]
    assert plain and [(e.name, round(e.t, 2)) for e in mirrored.events if e.name in swap] == plain
