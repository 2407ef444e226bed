"""The screen-light challenge measured (pipelines/liveness/light_response.py) on a real webcam clip of the dev set,
with the screen's reflection injected by the bench's own helper (pipelines/liveness/evaluation/light.py), and its
place in the verdict (pipelines/liveness/fusion.py)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random

import av
import numpy as np
import pytest

from models.packs import ModelPack
from pipelines.face_match import FaceMatcher
from pipelines.liveness import LivenessChecker, LivenessConfig
from pipelines.liveness.evaluation.light import Injection, face_masks, inject, random_sequences
from pipelines.liveness.fusion import Findings, Verdict, fuse
from pipelines.liveness.light import COLOURS, N_STEPS, LightSequence, issue_light_sequence, sequence_count
from pipelines.liveness.light_response import LightStatus, analyse_light, analyse_many
from pipelines.liveness.result import LivenessResult
from pipelines.reasons import ReasonCode, staff_may_overrule
from service.infra.config import RateLimitSettings
from service.infra.ratelimit import parse_rate
from tests.pipelines.liveness.videos import read_frames, write_video

CLIP = "videos/liveportrait_driving_d13.mp4"  # a real selfie-style clip: a man in an office, portrait, 11.7 s
SEQ = LightSequence(("red", "cyan", "green", "magenta", "white", "yellow", "blue", "green"))  # ends at 6.9 s
AMPLITUDE = 0.04  # the face's chromaticity moves by about 4 % (bench/results/liveness_light.json: all seen there)


@dataclass(frozen=True)
class Clips:
    plain: Path  # no screen light at all
    lit: Path  # SEQ reflected on the face (a tenth of it on the room), as a live face would
    flat: Path  # SEQ tinting the whole frame alike, as a screen replaying a video under the phone's light
    short: Path  # the lit clip cut at 3 s: the sequence ends at 6.9 s


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, matcher: FaceMatcher) -> Clips:
    out = tmp_path_factory.mktemp("light")
    frames = read_frames(data_dir / CLIP, 0.0, 8.6)  # the sequence's end, the lag injected and the slack
    with av.open(str(data_dir / CLIP)) as container:
        fps = round(float(container.streams.video[0].average_rate or 30))
    times = [i / fps for i in range(len(frames))]

    def detect(img: np.ndarray) -> tuple[float, float, float, float] | None:
        dets = matcher.detect(img)
        return dets[0].bbox if dets else None

    masks = face_masks(frames, detect)
    lit = inject(frames, times, masks, SEQ, Injection(AMPLITUDE, lag_s=0.4))
    flat = inject(frames, times, masks, SEQ, Injection(0.08, lag_s=0.4, whole_frame=True))
    return Clips(
        plain=write_video(out / "plain.mp4", frames, fps=fps),
        lit=write_video(out / "lit.mp4", lit, fps=fps),
        flat=write_video(out / "flat.mp4", flat, fps=fps),
        short=write_video(out / "short.mp4", lit[: 3 * fps], fps=fps),
    )


@pytest.fixture(scope="module")
def enforcing(pack: ModelPack, matcher: FaceMatcher) -> LivenessChecker:
    return LivenessChecker(pack, LivenessConfig(check_duplicates=False, light_mode="enforce"), matcher=matcher)


@pytest.fixture(scope="module")
def lit_result(enforcing: LivenessChecker, clips: Clips) -> LivenessResult:
    return enforcing.check(clips.lit, None, SEQ)


def test_a_face_that_reflects_the_sequence_is_seen_and_passes_in_enforce_mode(lit_result: LivenessResult) -> None:
    light = lit_result.light
    assert light is not None and light.status is LightStatus.SEEN, light
    assert light.lag_s is not None and abs(light.lag_s - 0.4) <= 0.2  # the recorder's latency, found
    assert light.face_gain is not None and light.background_gain is not None
    assert light.background_gain < 0.5 * light.face_gain
    assert (lit_result.verdict, lit_result.driver, lit_result.reasons) == (Verdict.PASS, "all_signals", [])


def test_no_light_on_the_face_asks_for_a_retake_in_enforce_mode_and_changes_nothing_in_observe(
    enforcing: LivenessChecker, shared_checker: LivenessChecker, clips: Clips
) -> None:
    enforced = enforcing.check(clips.plain, None, SEQ)
    assert enforced.light is not None and enforced.light.status is LightStatus.NOT_SEEN, enforced.light
    assert (enforced.verdict, enforced.driver, enforced.reasons) == (
        Verdict.RETAKE,
        "light",
        [ReasonCode.LIGHT_NOT_SEEN],
    )
    assert not enforced.passed
    observed = shared_checker.check(clips.plain, None, SEQ)  # the default mode: observe
    assert observed.light is not None and observed.light.status is LightStatus.NOT_SEEN
    assert (observed.verdict, observed.reasons) == (Verdict.PASS, [])
    assert observed.to_dict()["light"]["mode"] == "observe"


def test_a_whole_frame_tinted_alike_is_flat_and_goes_to_review(enforcing: LivenessChecker, clips: Clips) -> None:
    result = enforcing.check(clips.flat, None, SEQ)
    assert result.light is not None and result.light.status is LightStatus.FLAT, result.light
    assert (result.verdict, result.driver, result.reasons) == (Verdict.REVIEW, "light", [ReasonCode.LIGHT_FLAT])


def test_a_clip_that_ends_before_the_sequence_is_too_short(enforcing: LivenessChecker, clips: Clips) -> None:
    result = enforcing.check(clips.short, None, SEQ)
    assert result.light is not None and result.light.status is LightStatus.TOO_SHORT
    assert (result.verdict, result.reasons) == (Verdict.RETAKE, [ReasonCode.LIGHT_NOT_SEEN])


def test_the_reflection_of_one_sequence_is_not_seen_for_other_sequences(lit_result: LivenessResult) -> None:
    others = [s for s in random_sequences(40, 3) if s.colours != SEQ.colours]
    statuses = [r.status for r in analyse_many(lit_result.colour_samples, others)]
    assert statuses.count(LightStatus.SEEN) <= 1, statuses
    # One at a time, the same reading as many at once.
    assert [analyse_light(lit_result.colour_samples, s).status for s in others[:5]] == statuses[:5]


def test_the_json_carries_the_sequence_the_status_and_the_numbers(
    lit_result: LivenessResult, shared_checker: LivenessChecker, clips: Clips
) -> None:
    light = lit_result.to_dict()["light"]
    assert light["sequence"] == SEQ.to_dict() and light["status"] == "seen" and light["mode"] == "enforce"
    for key in ("lag_s", "correlation", "face_correlation", "background_correlation", "gain", "noise", "snr"):
        assert isinstance(light[key], float), key
    assert light["threshold"] > 0 and light["calibration_version"]
    assert shared_checker.check(clips.plain).to_dict()["light"] is None  # no sequence issued


def _findings(**changes: object) -> Findings:
    base = Findings(
        hard=[],
        passive_score=0.95,
        pass_threshold=0.9,
        review_floor=0.3,
        capture=[],
        challenge_performed=True,
        motion_live=True,
        light="not_seen",
        light_enforced=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_the_light_gates_only_a_pass_and_never_overrules_a_rejection() -> None:
    assert fuse(_findings(light="seen")).verdict is Verdict.PASS
    assert fuse(_findings(light="not_seen", light_enforced=False)).verdict is Verdict.PASS  # observe
    assert fuse(_findings(light="too_short")).reasons == [ReasonCode.LIGHT_NOT_SEEN]
    # A flat response with a failing passive score: the spoof rejects, and the flat light is listed with it.
    low = fuse(_findings(light="flat", passive_score=0.1))
    assert (low.verdict, low.driver, low.reasons) == (
        Verdict.REJECT,
        "passive",
        [ReasonCode.SPOOF_SUSPECTED, ReasonCode.LIGHT_FLAT],
    )
    # Hard findings stay first; a light seen never turns them (or a rigid, photo-like motion) into a pass.
    hard = fuse(_findings(light="seen", hard=[ReasonCode.FACE_MULTIPLE]))
    assert (hard.verdict, hard.driver) == (Verdict.REJECT, "face")
    assert fuse(_findings(light="seen", motion_live=False)).verdict is Verdict.REJECT


def test_staff_cannot_overrule_the_light_codes() -> None:
    assert not staff_may_overrule(ReasonCode.LIGHT_NOT_SEEN)
    assert not staff_may_overrule(ReasonCode.LIGHT_FLAT, number_matched=True)


def test_the_sequence_space_is_too_large_to_fish_for_or_to_render_beforehand() -> None:
    # The count is the generator's own rule (no colour twice in a row, at least three colours), enumerated where
    # that is cheap.
    for n in (3, 4, 5):
        rule = [
            s
            for s in itertools.product(COLOURS, repeat=n)
            if all(a != b for a, b in itertools.pairwise(s)) and len(set(s)) >= 3
        ]
        assert sequence_count(n) == len(rule)
    # The generator draws from all of it: 8 steps of 7 colours, and 2,000 draws barely repeat (960 sequences did).
    draws = [issue_light_sequence(Random(i)).colours for i in range(2000)]
    assert {len(d) for d in draws} == {N_STEPS} and {c for d in draws for c in d} == set(COLOURS)
    assert len(set(draws)) >= 1990
    assert sequence_count() == 1_959_510
    # An attacker opening sessions for one person at the rate limit over all requesters for a day, waiting for the
    # sequence a replay was tinted for, meets it with a chance under 1 %.
    rate = parse_rate(RateLimitSettings().beneficiary_all)
    assert rate is not None
    opens_a_day = rate.count * 86_400 // rate.seconds
    assert 1 - math.pow(1 - 1 / sequence_count(), opens_a_day) < 0.01
