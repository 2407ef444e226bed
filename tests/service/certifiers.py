"""A Certifier without models, for tests of the certification core and the features: it decides every session
with a fixed outcome, counts its runs and records the ID number it was asked to expect."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from pipelines.decision.result import Decision, Outcome
from pipelines.decision.runner import CertificationReport, Certifier, Template
from pipelines.face_match import FaceMatcher
from pipelines.id_card import IdCardReader, IdCardResult
from pipelines.liveness import LightSequence, LivenessChecker, LivenessConfig, LivenessResult
from pipelines.reasons import ReasonCode


def fixed_decision(outcome: Outcome) -> Decision:
    """The machine's decision FixedCertifier returns: a reject names a face mismatch, the others no reason. It
    records its face score with the lines it compared it with, as every real decision does (a decision without
    them takes two reviewers to accept: review.accept_needs_second)."""
    reasons = [ReasonCode.FACE_MISMATCH] if outcome is Outcome.REJECT else []
    return Decision(outcome, reasons, {"card_similarity": 0.9}, {"face_accept": 0.5, "face_review": 0.3}, {})


@dataclass
class FixedCertifier:
    outcome: Outcome = Outcome.ACCEPT
    runs: int = 0
    expected: list[str | None] = field(default_factory=list)
    lights: list[LightSequence | None] = field(default_factory=list)  # the screen-light sequence of each run

    def run(
        self,
        card: bytes | np.ndarray,
        video: bytes | Path,
        actions: object,
        expected_id_number: str | None = None,
        template: Template | None = None,
        fingerprints: object = None,
        today: object = None,
        light: LightSequence | None = None,
    ) -> CertificationReport:
        self.runs += 1
        self.expected.append(expected_id_number)
        self.lights.append(light)
        return CertificationReport(fixed_decision(self.outcome), None, None, None, None, None, {})


class _RememberingReader(IdCardReader):
    """The real ID-card reader, each distinct photo (and day) read once per test process."""

    def __init__(self, matcher: FaceMatcher) -> None:
        super().__init__(matcher)
        self._reads: dict[tuple[str, tuple[int, ...], dt.date | None], IdCardResult] = {}

    def read(self, image_bgr: np.ndarray, today: dt.date | None = None) -> IdCardResult:
        image = np.ascontiguousarray(image_bgr)
        key = (hashlib.sha256(image.tobytes()).hexdigest(), image.shape, today)
        if key not in self._reads:
            self._reads[key] = super().read(image_bgr, today)
        return copy.deepcopy(self._reads[key])


class _RememberingLiveness(LivenessChecker):
    """The real liveness checker, each distinct video (and challenge) analysed once per test process."""

    def __init__(self, matcher: FaceMatcher, light_mode: str = "observe") -> None:
        config = LivenessConfig(check_duplicates=False, light_mode=light_mode)
        super().__init__(matcher.pack, config, matcher=matcher)
        self._checks: dict[tuple[str, str, str], LivenessResult] = {}

    def check(
        self,
        video: bytes | Path | str,
        challenge_actions: Sequence[str] | str | None = None,
        light: LightSequence | None = None,
    ) -> LivenessResult:
        data = video if isinstance(video, bytes) else Path(video).read_bytes()
        plain = challenge_actions is None or isinstance(challenge_actions, str)
        asked = repr(challenge_actions if plain else list(challenge_actions or ()))
        key = (hashlib.sha256(data).hexdigest(), asked, repr(light))  # the light's response is part of the result
        if key not in self._checks:
            self._checks[key] = super().check(video, challenge_actions, light)
        return copy.deepcopy(self._checks[key])


class RememberingCertifier(Certifier):
    """The real pipeline (the default pack, the given decision policy) for the service's tests, which send the same
    few real media through it hundreds of times: the two slow stages, the card read and the video's liveness
    analysis (pure functions of the media, docs: pipelines/), run once per distinct input in a test process and
    are copied after that. Every other step runs on every call, as in production: the duplicate-video check
    against the test's own store, the face matches, the template, the decision. The pipeline's own tests
    (tests/pipelines) measure it with plain Certifiers."""

    @cached_property
    def reader(self) -> IdCardReader:
        return _RememberingReader(self.matcher)

    @cached_property
    def liveness(self) -> LivenessChecker:
        # Constructed as Certifier.liveness constructs it (duplicates are the run's to check, against its store).
        return _RememberingLiveness(self.matcher, self.light_mode)
