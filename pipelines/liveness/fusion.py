"""The liveness verdict: every signal's finding fused into pass / review / retake / reject, with its driver.

Order of the rules (the first that applies decides, and names the signal that drove it):

1. A hard finding rejects: a used or expired nonce, a duplicate video, no face / several faces / a face that
   changed, a challenge not performed in order (driver: ``nonce``, ``replay``, ``face``, ``challenge``). Only
   "no face" in a video too dark to see one asks for a retake instead (driver ``capture``).
2. A face that moved only as a flat picture does (``motion.live is False``) is a photo or a screen held to the
   camera: rejected with ``SPOOF_RIGID_MOTION`` (driver ``motion``), in every mode, challenge or not — unless
   the capture is poor, where the mesh is too noisy to tell, and the person is asked to retake.
3. A video that performs most of the challenges that could have been drawn (a recording that fits any
   challenge) goes to staff review (driver ``challenge``, ``CHALLENGE_EXTRA_ACTIONS``), whatever the passive
   score, unless that score is a clear spoof (below the review floor).
4. A passive score at or above the pass threshold passes (driver ``all_signals``) — in the screen-light
   challenge's "enforce" mode only when the face's response to the screen's colours was seen
   (:mod:`pipelines.liveness.light_response`): a face and background that follow the colours alike (a flat
   surface filling the view: a screen replaying a video) go to staff review with ``LIGHT_FLAT``, a response not
   seen (or a clip that ended before enough of the sequence) asks for a retake with ``LIGHT_NOT_SEEN`` (driver
   ``light``). In "observe" mode (the default) the response is reported and never changes the verdict. The
   light cannot turn any other rule's outcome into a pass: a print held close reflects it too.
5. A failing passive score on a poor capture (too dark, back-lit, blurred, face too small) asks for a retake
   with the capture's reason codes (driver ``capture``): the networks' score is not evidence there.
6. A borderline passive score (between the review floor and the pass threshold) with the challenge performed
   and live (non-rigid) motion goes to staff review with the evidence (driver ``passive_borderline``).
7. Anything else is a spoof: ``SPOOF_SUSPECTED`` (driver ``passive``). A clear spoof score (below the review
   floor) always lands here, whatever else the video shows.

An enforced ``LIGHT_FLAT`` is listed with the other spoof evidence of any review or rejection.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.reasons import ReasonCode


class Verdict(enum.StrEnum):
    PASS = "pass"
    REVIEW = "review"
    RETAKE = "retake"
    REJECT = "reject"


_DRIVERS: dict[ReasonCode, str] = {
    ReasonCode.VIDEO_DUPLICATE: "replay",
    ReasonCode.FACE_NOT_FOUND: "face",
    ReasonCode.FACE_MULTIPLE: "face",
    ReasonCode.FACE_CHANGED_IN_VIDEO: "face",
    ReasonCode.CHALLENGE_MISSING_ACTION: "challenge",
    ReasonCode.CHALLENGE_WRONG_ORDER: "challenge",
}


@dataclass(frozen=True)
class Findings:
    """What each signal found in one video."""

    hard: Sequence[ReasonCode]
    passive_score: float
    pass_threshold: float
    review_floor: float
    capture: Sequence[ReasonCode]
    challenge_performed: bool
    motion_live: bool | None
    # False when no key frame had a face to score (then there is no passive finding to report).
    passive_measured: bool = True
    # The video performs most of the challenges that could have been drawn, not only the one that was (a
    # recording made to fit any challenge): pipelines.liveness.actions.MAX_CHALLENGE_COVERAGE.
    challenge_extra: bool = False
    # The screen-light response's status (pipelines.liveness.light_response.LightStatus; None: no sequence), and
    # whether a pass needs it "seen" (the checker's light_mode "enforce").
    light: str | None = None
    light_enforced: bool = False


@dataclass(frozen=True)
class Fused:
    verdict: Verdict
    driver: str
    reasons: list[ReasonCode]


def _spoof_findings(f: Findings) -> list[ReasonCode]:
    """The spoof evidence listed with any rejection, so the JSON says everything that failed."""
    out: list[ReasonCode] = []
    if f.motion_live is False:
        out.append(ReasonCode.SPOOF_RIGID_MOTION)
    if f.passive_measured and f.passive_score < f.pass_threshold and not f.capture:
        out.append(ReasonCode.SPOOF_SUSPECTED)
    return out + _light_findings(f)


def _light_findings(f: Findings) -> list[ReasonCode]:
    return [ReasonCode.LIGHT_FLAT] if f.light_enforced and f.light == "flat" else []


def _pass_or_light(f: Findings) -> Fused:
    """Rule 4: every other signal passes; in "enforce" mode the screen's light must also be seen on the face."""
    if not f.light_enforced or f.light == "seen":
        return Fused(Verdict.PASS, "all_signals", [])
    if f.light == "flat":
        return Fused(Verdict.REVIEW, "light", [ReasonCode.LIGHT_FLAT])
    return Fused(Verdict.RETAKE, "light", [ReasonCode.LIGHT_NOT_SEEN])


def fuse(f: Findings) -> Fused:
    spoof = _spoof_findings(f)
    if set(f.hard) == {ReasonCode.FACE_NOT_FOUND} and f.capture:
        # No face because it was too dark to see one: film again in the light, with the hint.
        return Fused(Verdict.RETAKE, "capture", list(dict.fromkeys([*f.capture, *f.hard])))
    if f.hard:
        reasons = list(dict.fromkeys([*f.hard, *spoof]))
        return Fused(Verdict.REJECT, _DRIVERS.get(f.hard[0], "face"), reasons)
    if f.motion_live is False:
        if f.capture:
            return Fused(Verdict.RETAKE, "capture", list(f.capture))
        return Fused(Verdict.REJECT, "motion", spoof)
    clear_spoof = f.passive_measured and f.passive_score < f.review_floor
    if f.challenge_extra and not clear_spoof:
        # Not refused outright (a person may repeat movements), not passed either: a person looks at it.
        return Fused(Verdict.REVIEW, "challenge", [ReasonCode.CHALLENGE_EXTRA_ACTIONS, *spoof])
    if f.passive_score >= f.pass_threshold:
        return _pass_or_light(f)
    if f.capture:
        return Fused(Verdict.RETAKE, "capture", list(f.capture))
    if f.passive_score >= f.review_floor and f.challenge_performed and f.motion_live is True:
        return Fused(Verdict.REVIEW, "passive_borderline", [ReasonCode.SPOOF_SUSPECTED, *_light_findings(f)])
    return Fused(Verdict.REJECT, "passive", [ReasonCode.SPOOF_SUSPECTED, *_light_findings(f)])
