"""Which frames the screen-light analysis reads (pipelines/liveness/light_response.py): those around the sequence
up to ``pad_s`` before and after it feed the drift fit, those within ``guard_s`` of a change of colour are left
out (a frame exposed across the change holds both colours). The frames are a face lit by a sequence, built from
the analysis' own model of a reflection, with seeded sensor noise: what each rule keeps or leaves is exact."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from pipelines.liveness.light import LightSequence
from pipelines.liveness.light_response import (
    ColourSample,
    LightResponse,
    LightRules,
    LightStatus,
    analyse_light,
    covered_steps,
    expected_shift,
)

SEQ = LightSequence(("red", "cyan", "green", "magenta", "white", "yellow", "blue", "green"))  # 0.5 s to 6.9 s
LAG = 0.4  # the recorder's latency: the first colour shows 0.9 s into the clip, the last ends at 7.3 s
FPS = 6.0
SKIN = np.array([110.0, 135.0, 175.0])  # BGR
ROOM = np.array([120.0, 118.0, 112.0])


def lit_clip(amplitude: float = 0.04, seconds: float = 9.4, seed: int = 7) -> list[ColourSample]:
    """A face reflecting SEQ at LAG (log R/G and log B/G moved by ``amplitude`` times the colour's shift), the
    room unmoved, both with sensor noise."""
    rng = np.random.default_rng(seed)
    out = []
    for t in np.arange(0.0, seconds, 1.0 / FPS):
        step = int(np.floor((t - SEQ.start_s - LAG) / SEQ.step_s))
        dr, db = expected_shift(SEQ.colours[step]) if 0 <= step < len(SEQ.colours) else (0.0, 0.0)
        face = SKIN * np.exp(amplitude * np.array([db, 0.0, dr])) + rng.normal(0, 0.4, 3)
        room = ROOM + rng.normal(0, 0.2, 3)
        out.append(ColourSample(float(t), tuple(map(float, face)), tuple(map(float, room))))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def at_lag() -> LightRules:
    """The shipped rules with the lag search fixed at the lag injected: one window, so a change to a frame the
    analysis reads shows in its numbers, and one it leaves out cannot."""
    return replace(LightRules.load(), lag_min_s=LAG, lag_max_s=LAG)


def with_frame_changed(samples: list[ColourSample], t: float) -> list[ColourSample]:
    """The frame nearest ``t`` turned strongly green (a flash, a hand passing): a frame the fit reads moves it."""
    i = int(np.argmin([abs(s.t - t) for s in samples]))
    s = samples[i]
    out = list(samples)
    out[i] = ColourSample(s.t, (s.face[0] * 0.8, s.face[1] * 1.3, s.face[2] * 0.8), s.background)
    return out


def numbers(r: LightResponse) -> tuple[float | None, ...]:
    return (r.correlation, r.gain, r.noise, r.face_correlation, r.background_correlation)


def change_times() -> list[float]:
    return [SEQ.start_s + LAG + k * SEQ.step_s for k in range(len(SEQ.colours) + 1)]


def test_the_clip_reads_seen_with_every_step_read_back(at_lag: LightRules) -> None:
    r = analyse_light(lit_clip(), SEQ)  # the shipped rules, lag searched
    assert r.status is LightStatus.SEEN
    assert r.steps_matched == r.steps_covered == len(SEQ.colours)
    assert r.lag_s is not None and abs(r.lag_s - LAG) <= 0.05


def test_frames_within_the_guard_of_a_change_of_colour_are_left_out(at_lag: LightRules) -> None:
    clip = lit_clip()
    base = numbers(analyse_light(clip, SEQ, at_lag))
    near = [s.t for s in clip if min(abs(s.t - c) for c in change_times()) < at_lag.guard_s]
    assert len(near) >= 3  # at 6 fps some frames fall on a change
    for t in near:
        assert numbers(analyse_light(with_frame_changed(clip, t), SEQ, at_lag)) == base
    # the same frames, with no guard, are read
    unguarded = replace(at_lag, guard_s=0.0)
    assert any(
        numbers(analyse_light(with_frame_changed(clip, t), SEQ, unguarded))
        != numbers(analyse_light(clip, SEQ, unguarded))
        for t in near
    )


def test_a_frame_in_the_middle_of_a_step_is_read(at_lag: LightRules) -> None:
    clip = lit_clip()
    middle = SEQ.start_s + LAG + 3.5 * SEQ.step_s
    assert numbers(analyse_light(with_frame_changed(clip, middle), SEQ, at_lag)) != numbers(
        analyse_light(clip, SEQ, at_lag)
    )


def test_the_drift_fit_takes_the_frames_up_to_pad_s_around_the_sequence_and_no_further(at_lag: LightRules) -> None:
    clip = lit_clip()
    base = numbers(analyse_light(clip, SEQ, at_lag))
    first, end = change_times()[0], change_times()[-1]
    assert at_lag.pad_s == 1.0
    inside_pad = (first - 0.5, end + 0.5)
    for t in inside_pad:
        assert numbers(analyse_light(with_frame_changed(clip, t), SEQ, at_lag)) != base
    for t in (end + 1.2, end + 1.8):
        assert numbers(analyse_light(with_frame_changed(clip, t), SEQ, at_lag)) == base
    # without the pad, the frames before and after the sequence are not read at all
    unpadded = replace(at_lag, pad_s=0.0)
    for t in inside_pad:
        assert numbers(analyse_light(with_frame_changed(clip, t), SEQ, unpadded)) == numbers(
            analyse_light(clip, SEQ, unpadded)
        )


@pytest.mark.parametrize("seconds", [9.4, 5.0, 4.0])
def test_covered_steps_counts_the_steps_the_analysis_reads(at_lag: LightRules, seconds: float) -> None:
    """The window the bench's `seen_when_shown` row counts with is the analysis' own: a clip cut short shows the
    steps before its end, and reads too_short below min_steps."""
    clip = lit_clip(seconds=seconds)
    covered = covered_steps(np.array([s.t for s in clip]), SEQ, LAG, at_lag)
    # steps ended before the clip did
    shown = min(int(np.floor((seconds - SEQ.start_s - LAG) / SEQ.step_s)), len(SEQ.colours))
    assert shown - 1 <= int(covered.sum()) <= min(shown + 1, len(SEQ.colours))
    assert covered[: max(shown - 1, 0)].all() and not covered[shown + 1 :].any()
    r = analyse_light(clip, SEQ, at_lag)
    if covered.sum() >= at_lag.min_steps:
        assert r.status is LightStatus.SEEN and r.steps_covered == int(covered.sum())
    else:
        assert r.status is LightStatus.TOO_SHORT


@pytest.mark.parametrize(
    "bad",
    [{"lag_step_s": 0.0}, {"lag_min_s": 1.0, "lag_max_s": 0.0}, {"guard_s": 0.3}, {"pad_s": -1.0}, {"min_steps": 0}],
    ids=["no-lag-step", "lags-reversed", "guard-too-wide", "negative-pad", "no-steps"],
)
def test_a_calibration_file_with_impossible_values_is_refused_when_loaded(bad: dict[str, Any]) -> None:
    """Found by review: a lag step of 0 divided by zero, reversed lags failed deep in numpy, and a guard wide enough
    to leave no step two frames read every take as too short: now refused, saying which value, when loaded."""
    with pytest.raises(ValueError, match="light rules"):
        replace(LightRules.load(), **bad)
