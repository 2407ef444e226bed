"""A recording prepared to fit any challenge (the actions in every order) is not passed. On real frames of the
development webcam clip: its head movements and a blink, repeated, make a video that performs most two-action
challenges, and staff review it whichever is drawn. The clip itself, performing its own challenge, still passes."""

from __future__ import annotations

from pathlib import Path

from pipelines.liveness import LivenessChecker
from pipelines.liveness.actions import MAX_CHALLENGE_COVERAGE, ActionEvent, challenge_coverage
from pipelines.reasons import ReasonCode
from tests.pipelines.liveness.videos import read_frames, write_video
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO


def _events(names: str) -> list[ActionEvent]:
    full = {"L": "turn_left", "R": "turn_right", "N": "nod", "B": "blink", "M": "open_mouth"}
    return [ActionEvent(full[n], float(i), 1.0) for i, n in enumerate(names)]


def test_coverage_counts_the_challenges_a_video_performs_in_order() -> None:
    assert challenge_coverage(_events("LRNBM" * 3), 3) == 1.0  # every ordered triple of the five actions
    assert challenge_coverage(_events("LRNBM" * 2), 2) == 1.0
    assert challenge_coverage(_events("LN"), 2) == 1 / 20  # only (left, nod)
    assert challenge_coverage(_events("NL"), 2) == 1 / 20  # only (nod, left): order matters
    assert challenge_coverage(_events("LRLRNRRB"), 2) == 8 / 20 < MAX_CHALLENGE_COVERAGE  # the dev clip's events
    assert challenge_coverage(_events("LLLL"), 2) == 0.0 and challenge_coverage(_events("LRN"), 0) == 0.0


def test_the_clip_performing_its_own_challenge_passes_its_repeats_do_not(
    shared_checker: LivenessChecker, data_dir: Path, tmp_path: Path
) -> None:
    own = shared_checker.check(data_dir / LIVE_VIDEO, LIVE_ACTIONS)
    assert own.passed and ReasonCode.CHALLENGE_EXTRA_ACTIONS not in own.reasons, own.to_dict()["events"]

    # Its head movements (left, right, left, right, nod: the first 5 s) and its blink (10.2-11.2 s), three times.
    head = read_frames(data_dir / LIVE_VIDEO, 0.0, 5.0)
    blink = read_frames(data_dir / LIVE_VIDEO, 10.2, 11.2)
    prepared = write_video(tmp_path / "prepared.mp4", (head + blink) * 3)
    for challenge in (["nod", "turn_left"], ["blink", "turn_right"], ["turn_right", "nod"]):
        result = shared_checker.check(prepared, challenge)
        assert all(a.detected for a in result.actions), result.to_dict()["actions"]  # "performed", in order
        assert not result.passed and result.verdict.value == "review", result.to_dict()
        assert result.reasons[0] is ReasonCode.CHALLENGE_EXTRA_ACTIONS and result.driver == "challenge"
