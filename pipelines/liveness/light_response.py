"""The screen-light challenge, measured: does the face's colour follow the sequence the screen showed?

Per tracked frame the tracker keeps two mean colours (:func:`sample_colours`): the face's skin (small patches
around mesh points on the forehead, nose bridge and cheeks; no eyes, mouth or hair) and the background (the
frame outside the face box widened, and outside everything below it: the shoulders are as near the screen as
the face). :func:`analyse_light` turns them into log-chromaticity (log R/G, log B/G), takes the face minus the
background (a camera's white balance and exposure act on both alike, so they cancel), removes a slow quadratic
drift (fitted on the sequence and the frames just before and after it; frames at a change of colour left out),
and correlates what is left with the chromaticity shift each shown colour would cause, the sequence
shifted by a lag searched around its start (the recorder starts a little before or after the page's clock). The
face alone and the background alone are correlated too, at the same lag: a flat surface filling the view (a
screen replaying a video under the phone's light) follows the sequence in both alike.

The threshold on the correlation and how it was chosen are in ``light_calibration.json`` beside this file
(bench/liveness_light.py, docs/liveness.md "The screen-light challenge").
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.liveness.light import COLOURS, LightSequence

CALIBRATION_PATH = Path(__file__).with_name("light_calibration.json")

# MediaPipe Face Mesh points on bare skin: forehead (151, 108, 337), nose bridge (195), cheeks (50, 280, 205,
# 425, 117, 346, 187, 411). Eyes, brows, lips and the face's outline (hair, beard, ears) are left out.
SKIN_POINTS = np.array([151, 108, 337, 195, 50, 280, 205, 425, 117, 346, 187, 411])
# A 4×4 grid of pixels around each point, spanning ±PATCH of the face's width: 192 reads per frame.
_PATCH = 0.035
_OFFSETS = np.linspace(-1.0, 1.0, 4)
# The background: the frame's 8-px grid outside the face box widened by these shares of its size (sides, top).
_WIDEN_X, _WIDEN_TOP = 0.3, 0.45
_MIN_BACKGROUND_SHARE = 0.05


@dataclass(frozen=True)
class ColourSample:
    """One tracked frame's mean colours (BGR, 0-255): the face's skin and the background (None: too little)."""

    t: float
    face: tuple[float, float, float]
    background: tuple[float, float, float] | None


def sample_colours(image: np.ndarray, points: np.ndarray, t: float, grid: np.ndarray | None = None) -> ColourSample:
    """Sample one BGR frame: ``points`` are the mesh's 2-D points in the frame's pixels; ``grid`` the frame's
    ``[::8, ::8]`` subsample when the caller already has it."""
    h, w = image.shape[:2]
    xs, ys = points[:, 0], points[:, 1]
    x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    r = _PATCH * max(x1 - x0, 1.0)
    centres = points[SKIN_POINTS]
    px = (centres[:, 0, None, None] + r * _OFFSETS[None, None, :]).round().astype(np.intp)
    py = (centres[:, 1, None, None] + r * _OFFSETS[None, :, None]).round().astype(np.intp)
    px, py = np.broadcast_arrays(np.clip(px, 0, w - 1), np.clip(py, 0, h - 1))
    face = image[py.ravel(), px.ravel()].reshape(-1, 3).mean(axis=0)
    g = image[::8, ::8] if grid is None else grid
    bw, bh = x1 - x0, y1 - y0
    gx0 = max(0, int((x0 - _WIDEN_X * bw) / 8))
    gx1 = min(g.shape[1], int((x1 + _WIDEN_X * bw) / 8) + 1)
    gy0 = max(0, int((y0 - _WIDEN_TOP * bh) / 8))
    inner = g[gy0:, gx0:gx1]
    n_bg = g.shape[0] * g.shape[1] - inner.shape[0] * inner.shape[1]
    background: tuple[float, float, float] | None = None
    if n_bg >= _MIN_BACKGROUND_SHARE * g.shape[0] * g.shape[1]:
        total = g.reshape(-1, 3).sum(axis=0, dtype=np.float64) - inner.reshape(-1, 3).sum(axis=0, dtype=np.float64)
        b = total / n_bg
        background = (float(b[0]), float(b[1]), float(b[2]))
    return ColourSample(t, (float(face[0]), float(face[1]), float(face[2])), background)


class LightStatus(enum.StrEnum):
    SEEN = "seen"  # the face follows the sequence, the background much less
    NOT_SEEN = "not_seen"
    FLAT = "flat"  # face and background follow it alike: a flat surface filling the view
    TOO_SHORT = "too_short"  # the clip (or the tracked face) ends before enough of the sequence


@dataclass(frozen=True)
class LightRules:
    """The analysis' parameters and the calibrated threshold (``light_calibration.json``)."""

    threshold: float = 0.6
    # "flat" needs the face and the background each to correlate at least this much: its own value, since the seen
    # threshold may fall to DECODE_FROM where the read-back alone keeps chance down, and a flat reading (a review)
    # needs no read-back to stop it.
    flat_threshold: float = 0.6
    # "seen" needs the background's gain under this share of the face's; "flat" above it.
    max_background_ratio: float = 0.5
    # Steps of the sequence with at least two tracked frames, at the lag read; a clip must also last until that
    # many steps have been shown at the sequence's own timing.
    min_steps: int = 5
    lag_min_s: float = -0.3
    lag_max_s: float = 1.5
    # A lag searched in these steps is at most half of one off the true one: no frame outside the guard below is
    # then counted in the wrong step (a finer grid read no more on the committed records, at twice the cost).
    lag_step_s: float = 0.1
    # The drift fit also takes the frames up to this long before the first colour and after the last (no colour
    # on screen there): anchored on both sides, it takes less of the first and last steps' shift.
    pad_s: float = 1.0
    # Frames this close to a change of colour are left out: a frame exposed across the change (the display's
    # refresh, the exposure, a rolling shutter) holds some of both colours.
    guard_s: float = 0.05
    version: str = "uncalibrated"

    def __post_init__(self) -> None:
        # The values come from a calibration file: one a maintainer got wrong is refused when it is loaded, with
        # what is wrong, not as a division by zero (or every take too short) in the middle of a worker's job.
        if not (self.lag_step_s > 0 and self.lag_max_s >= self.lag_min_s and self.min_steps >= 1):
            raise ValueError(f"light rules: bad lag search or min_steps ({self})")
        # A guard over a quarter of the shortest step a sequence may have (0.4 s) would leave too few frames a step.
        if not 0 <= self.guard_s <= 0.1 or self.pad_s < 0:
            raise ValueError(f"light rules: guard_s must be in [0, 0.1] s and pad_s >= 0 ({self})")

    @classmethod
    def load(cls, path: Path | None = None) -> LightRules:
        return _load(str(path or CALIBRATION_PATH))


@lru_cache(maxsize=4)
def _load(path: str) -> LightRules:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    fields = {k: data[k] for k in LightRules.__dataclass_fields__ if k in data}
    return LightRules(**fields)


@dataclass(frozen=True)
class LightResponse:
    """What the analysis found for one sequence; the correlations and gains are at the best lag."""

    sequence: LightSequence
    status: LightStatus
    lag_s: float | None = None
    correlation: float | None = None  # face minus background against the expected shift
    face_correlation: float | None = None
    background_correlation: float | None = None
    gain: float | None = None  # log-chromaticity per unit of expected shift (face minus background)
    face_gain: float | None = None
    background_gain: float | None = None
    noise: float | None = None  # rms of what the fit leaves (log-chromaticity)
    snr: float | None = None
    n_samples: int = 0
    steps_covered: int = 0
    # Covered steps whose colour, read back from the face (the nearest colour's response), is the one shown.
    steps_matched: int = 0
    threshold: float = 0.0
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "sequence": self.sequence.to_dict(),
            "status": self.status.value,
            "lag_s": r(self.lag_s),
            "correlation": r(self.correlation),
            "face_correlation": r(self.face_correlation),
            "background_correlation": r(self.background_correlation),
            "gain": r(self.gain),
            "face_gain": r(self.face_gain),
            "background_gain": r(self.background_gain),
            "noise": r(self.noise),
            "snr": r(self.snr),
            "n_samples": self.n_samples,
            "steps_covered": self.steps_covered,
            "steps_matched": self.steps_matched,
            "threshold": self.threshold,
            "calibration_version": self.version,
        }


def _linear(v: float) -> float:
    c = v / 255.0
    return c / 12.92 if c <= 0.04045 else float(((c + 0.055) / 1.055) ** 2.4)


@lru_cache(maxsize=16)
def expected_shift(colour: str) -> tuple[float, float]:
    """The change of (log R/G, log B/G) per unit of this colour's light added to a neutral ambient light."""
    r, g, b = (_linear(v) for v in COLOURS[colour])
    return r - g, b - g


def chromaticity(bgr: np.ndarray) -> np.ndarray:
    """(n, 3) BGR means → (n, 2) log R/G, log B/G."""
    x = np.log(np.maximum(bgr, 1.0))
    return np.stack([x[:, 2] - x[:, 1], x[:, 0] - x[:, 1]], axis=1)


@dataclass(frozen=True)
class _Lag:
    """One lag's window: the samples inside the sequence and around it, their step, and the drift-removing
    projection."""

    lag: float
    idx: np.ndarray  # the step of each sample; len(colours) (the "no colour" step) before and after the sequence
    covered: np.ndarray  # the steps with at least two samples
    residual: np.ndarray  # (n, n): I minus the projection on a quadratic in time
    ys: tuple[np.ndarray, np.ndarray, np.ndarray]  # face minus background, face, background; drift removed


def _window(t: np.ndarray, seq: LightSequence, lag: float, rules: LightRules) -> tuple[np.ndarray, np.ndarray]:
    """The frames read at `lag` (their rows of `t`: up to `pad_s` around the sequence, none within `guard_s` of a
    change of colour) and each one's step (-1 before the first colour, len(colours) after the last)."""
    n_steps = len(seq.colours)
    phase = (t - seq.start_s - lag) / seq.step_s
    change = np.round(phase)  # the nearest change of colour (0: the first shows, n_steps: the last ends)
    near_change = (np.abs(phase - change) * seq.step_s < rules.guard_s) & (change >= 0) & (change <= n_steps)
    padded = (phase >= -rules.pad_s / seq.step_s) & (phase < n_steps + rules.pad_s / seq.step_s)
    rows = np.flatnonzero(padded & ~near_change)
    return rows, np.clip(np.floor(phase[rows]).astype(int), -1, n_steps)


def _covered(step: np.ndarray, n_steps: int) -> np.ndarray:
    inside = step[(step >= 0) & (step < n_steps)]
    return np.asarray(np.bincount(inside, minlength=n_steps) >= 2)


def covered_steps(t: np.ndarray, seq: LightSequence, lag: float, rules: LightRules) -> np.ndarray:
    """Which steps of `seq` frames at times `t` show at `lag`, as the analysis counts them (at least two frames
    away from a change of colour): `min_steps` of them, or the lag is not read."""
    return _covered(_window(t, seq, lag, rules)[1], len(seq.colours))


def _lags(t: np.ndarray, ys: Sequence[np.ndarray], seq: LightSequence, rules: LightRules) -> list[_Lag]:
    out: list[_Lag] = []
    n_steps = len(seq.colours)
    n_lags = round((rules.lag_max_s - rules.lag_min_s) / rules.lag_step_s) + 1
    for lag in np.linspace(rules.lag_min_s, rules.lag_max_s, n_lags):
        rows, step = _window(t, seq, float(lag), rules)
        covered = _covered(step, n_steps)
        if covered.sum() < rules.min_steps:
            continue
        tau = (t[rows] - t[rows].mean()) / max(float(np.ptp(t[rows])), 1e-6)
        basis = np.stack([np.ones_like(tau), tau, tau * tau], axis=1)
        residual = np.eye(len(rows)) - basis @ np.linalg.pinv(basis)
        drift_free = (residual @ ys[0][rows], residual @ ys[1][rows], residual @ ys[2][rows])
        step = np.where(step >= 0, step, n_steps)  # before and after the sequence alike: no colour
        out.append(_Lag(float(lag), step, covered, residual, drift_free))
    return out


def _correlate(y: np.ndarray, er: np.ndarray, ee: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per sequence (first axis of er): correlation, gain, rms of the rest, and signal-to-noise."""
    yy = float((y * y).sum())
    ye = (er * y[None]).sum(axis=(1, 2))
    size = y.size
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where((ee > 1e-12) & (yy > 1e-18), ye / np.sqrt(ee * yy), 0.0)
        gain = np.where(ee > 1e-12, ye / ee, 0.0)
        noise = np.sqrt(np.maximum(yy - gain * ye, 0.0) / size)
        snr = np.where(noise > 0, np.abs(gain) * np.sqrt(ee / size) / noise, 0.0)
    return rho, gain, noise, snr


_FIELDS = ("rho", "gain", "noise", "snr", "face_rho", "face_gain", "back_rho", "back_gain")


def analyse_many(
    samples: Sequence[ColourSample], sequences: Sequence[LightSequence], rules: LightRules | None = None
) -> list[LightResponse]:
    """The face's response to each sequence in one clip's colour samples. The windows and the drift removal
    depend only on the timing, so they are computed once for every sequence of one timing (the evaluation
    draws hundreds of sequences per clip)."""
    rules = rules or LightRules.load()
    out: dict[int, LightResponse] = {}
    groups: dict[tuple[int, float, float], list[int]] = {}
    for i, s in enumerate(sequences):
        groups.setdefault((len(s.colours), s.step_s, s.start_s), []).append(i)
    for members in groups.values():
        for i, r in zip(members, _analyse_group(samples, [sequences[i] for i in members], rules), strict=True):
            out[i] = r
    return [out[i] for i in range(len(sequences))]


def analyse_light(
    samples: Sequence[ColourSample], seq: LightSequence, rules: LightRules | None = None
) -> LightResponse:
    """The face's response to ``seq`` in one clip's colour samples."""
    return analyse_many(samples, [seq], rules)[0]


def _analyse_group(
    samples: Sequence[ColourSample], seqs: Sequence[LightSequence], rules: LightRules
) -> list[LightResponse]:
    """Sequences of one timing against one clip's samples."""
    kept = [s for s in samples if s.background is not None]
    short = [
        LightResponse(s, LightStatus.TOO_SHORT, n_samples=len(kept), threshold=rules.threshold, version=rules.version)
        for s in seqs
    ]
    first = seqs[0]
    if not samples or samples[-1].t < first.start_s + rules.min_steps * first.step_s - _END_SLACK_S:
        return short
    if len(kept) < 2 * rules.min_steps:
        # The clip lasted, but the face filled the view (no background to compare): nothing could be seen.
        return [replace(r, status=LightStatus.NOT_SEEN) for r in short]
    t = np.array([s.t for s in kept])
    face = chromaticity(np.array([s.face for s in kept]))
    back = chromaticity(np.array([s.background for s in kept], dtype=np.float64))
    lags = _lags(t, (face - back, face, back), first, rules)
    if not lags:
        return short
    # (K, steps + 1, 2): the last step is the screen before and after the sequence, no colour (no shift)
    shifts = np.array([[*(expected_shift(c) for c in s.colours), (0.0, 0.0)] for s in seqs])
    table = _table(lags, seqs, shifts)
    return [
        short[i] if np.isnan(table["rho"][i]).all() else _response(seq, i, lags, shifts, table, len(kept), rules)
        for i, seq in enumerate(seqs)
    ]


def _table(lags: Sequence[_Lag], seqs: Sequence[LightSequence], shifts: np.ndarray) -> dict[str, np.ndarray]:
    """Every field of _FIELDS per sequence (rows) and lag (columns); NaN where a lag shows too few colours."""
    names = list(COLOURS)
    onehot = np.array([[[c == n for n in names] for c in s.colours] for s in seqs])  # (K, steps, colours)
    table = {f: np.full((len(seqs), len(lags)), np.nan) for f in _FIELDS}
    for j, lag in enumerate(lags):
        # A window must show at least three different colours (two alternating are matched by chance more).
        usable = onehot[:, lag.covered].any(axis=1).sum(axis=1) >= 3
        er = np.einsum("ij,kjc->kic", lag.residual, shifts[:, lag.idx])
        ee = (er * er).sum(axis=(1, 2))
        d, f, b = (_correlate(y, er, ee) for y in lag.ys)
        for name, values in zip(_FIELDS, (*d, f[0], f[1], b[0], b[1]), strict=True):
            table[name][:, j] = np.where(usable, values, np.nan)
    return table


def _response(
    seq: LightSequence,
    i: int,
    lags: Sequence[_Lag],
    shifts: np.ndarray,
    table: dict[str, np.ndarray],
    n_samples: int,
    rules: LightRules,
) -> LightResponse:
    """Sequence ``i``'s reading: at the lag where the face minus the background follows it best."""
    j = int(np.nanargmax(table["rho"][i]))
    v = {name: float(table[name][i, j]) for name in _FIELDS}
    covered = int(lags[j].covered.sum())
    matched = _steps_matched(lags[j], shifts[i], v["gain"]) if v["rho"] >= DECODE_FROM else 0
    status = LightStatus.SEEN if _seen(v, matched == covered, rules) else LightStatus.NOT_SEEN
    if status is LightStatus.NOT_SEEN:
        # A flat surface: face and background follow the sequence alike, at the lag the face follows it best
        # (the face minus the background follows nothing there, so its own best lag says nothing).
        jf = int(np.nanargmax(table["face_rho"][i]))
        vf = {name: float(table[name][i, jf]) for name in _FIELDS}
        if _flat(vf, rules):
            status, j = LightStatus.FLAT, jf
            v = {**v, **{k: vf[k] for k in ("face_rho", "face_gain", "back_rho", "back_gain")}}
    return LightResponse(
        seq,
        status,
        lag_s=lags[j].lag,
        correlation=v["rho"],
        face_correlation=v["face_rho"],
        background_correlation=v["back_rho"],
        gain=v["gain"],
        face_gain=v["face_gain"],
        background_gain=v["back_gain"],
        noise=v["noise"],
        snr=v["snr"],
        n_samples=n_samples,
        steps_covered=covered,
        steps_matched=matched,
        threshold=rules.threshold,
        version=rules.version,
    )


_END_SLACK_S = 0.2  # a clip may end this much before min_steps steps were shown (its last frame's time)
DECODE_FROM = 0.3  # under this correlation nothing is read "seen": the colours are not read back


def _steps_matched(lag: _Lag, shifts: np.ndarray, gain: float) -> int:
    """How many covered steps read back as the colour shown: the fit of the whole window gets worse, not better,
    when that step's colour is replaced by any other (the drift removal applied to the changed sequence too). A
    correlation rewards a partial match; this asks every step, so a recording lit by another sequence (an
    earlier session's, replayed) does not pass for this one."""
    er = lag.residual @ shifts[lag.idx]
    rest = lag.ys[0] - gain * er  # (n, 2): what the fit leaves
    palette = np.array([expected_shift(c) for c in COLOURS])
    matched = 0
    for step in np.flatnonzero(lag.covered):
        r = lag.residual[:, lag.idx == step].sum(axis=1)  # how a change at this step shows after the drift removal
        d = palette - shifts[step][None, :]  # (colours, 2): each other colour's change of the expected shift
        worse = -2 * gain * d @ (rest.T @ r) + gain * gain * float(r @ r) * (d * d).sum(axis=1)
        matched += int(np.all(worse[np.abs(d).sum(axis=1) > 1e-9] > 0))
    return matched


def _quiet(v: dict[str, float], rules: LightRules) -> bool:
    """The background follows the sequence far less than the face (a face near the screen, a room far away)."""
    return v["back_gain"] <= rules.max_background_ratio * v["face_gain"]


def _seen(v: dict[str, float], steps_read_back: bool, rules: LightRules) -> bool:
    """The face minus the background follows the sequence, every covered step reads back as its colour, and the
    background alone follows it far less than the face."""
    return v["rho"] >= rules.threshold and v["face_gain"] > 0 and _quiet(v, rules) and steps_read_back


def _flat(v: dict[str, float], rules: LightRules) -> bool:
    """The face and the background each follow the sequence, the background as much as the face (or more)."""
    return v["face_rho"] >= rules.flat_threshold and v["back_rho"] >= rules.flat_threshold and not _quiet(v, rules)
