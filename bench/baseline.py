"""The straightforward certification pipeline the project's design is measured against (benchmark only).

What a first integration of the same models does: one plain full-image RapidOCR pass on the card photo and a
regex parser; the face detector on the whole card photo for the portrait; every video frame decoded at full
resolution; detector, anti-spoofing, face mesh and one recognizer call on EVERY frame, one frame at a time (no
sampling, no tracking, no batching, no second thread); the card portrait compared with all frames. It reuses
the project's model objects (a `Certifier`'s), its action detector and its decision rules, so that the speed
ratio isolates the pipeline design, not the models.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import av
import numpy as np

from bench.id_card import baseline_fields
from pipelines.decision.rules import Evidence, decide
from pipelines.decision.runner import Certifier
from pipelines.errors import MediaError, PipelineError
from pipelines.face_match import FaceObservation, MatchResult
from pipelines.idnumber import check_number
from pipelines.liveness.actions import ActionConfig, detect_events, verify_sequence
from pipelines.liveness.signals import FaceSignals, measure
from pipelines.media import decode_image
from pipelines.reasons import ReasonCode

T = TypeVar("T")


@dataclass
class BaselineCard:
    """Satisfies the decision's IdCardLike protocol."""

    id_number: str | None
    id_number_valid: bool
    errors: list[ReasonCode] = field(default_factory=list)
    expired: bool | None = None


@dataclass
class BaselineLiveness:
    """Satisfies the decision's LivenessLike protocol."""

    passed: bool
    reasons: list[ReasonCode]
    passive_score: float
    passive_threshold: float
    frames_analyzed: int


@dataclass
class BaselineReport:
    decision: str
    reasons: list[str]
    stages_ms: dict[str, float]
    frames: int
    card_similarity: float | None


class _Clock:
    """Accumulates wall time per named step (the baseline is single-threaded: wall = its CPU path)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)

    def time(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.ms[name] += (time.perf_counter() - t0) * 1000


class BaselinePipeline:
    def __init__(self, certifier: Certifier) -> None:
        self.certifier = certifier
        self.matcher = certifier.matcher
        self.ocr = certifier.reader.ocr
        self.passive = certifier.liveness.passive
        self.passive_threshold = certifier.liveness.passive_threshold
        self.landmarks = certifier.liveness.landmarks

    def warm_up(self, card: bytes) -> None:
        self.ocr.full_pass(decode_image(card))

    # -- stages ---------------------------------------------------------------------------------------

    def read_card(self, card: bytes, clock: _Clock) -> tuple[BaselineCard, FaceObservation | None]:
        bgr = clock.time("id_card", decode_image, card)
        lines, _ = clock.time("id_card", self.ocr.full_pass, bgr)
        fields = clock.time("id_card", baseline_fields, [text for _, text, _ in lines])
        number = fields.get("id_number")
        card_res = BaselineCard(number, check_number(number).valid)
        try:
            # The portrait: the most prominent face found on the whole card photo.
            reference = clock.time("card_portrait", self.matcher.observe, bgr, None, True)
        except PipelineError:
            reference = None
        return card_res, reference

    def analyse_video(
        self, video: bytes, actions: Sequence[str], clock: _Clock
    ) -> tuple[BaselineLiveness, list[FaceObservation]]:
        signals: list[FaceSignals] = []
        scores: list[float] = []
        observations: list[FaceObservation] = []
        frames = missing = 0
        with av.open(io.BytesIO(video), mode="r") as container:
            stream = container.streams.video[0]
            decoded = container.decode(stream)
            t0: float | None = None
            while True:
                frame = clock.time("decode", next, decoded, None)
                if frame is None:
                    break
                if frame.time is None:
                    continue
                image = clock.time("decode", _to_bgr, frame)
                t0 = frame.time if t0 is None else t0
                frames += 1
                dets = clock.time("detect", self.matcher.detect, image)
                if not dets:
                    missing += 1
                    continue
                main = dets[0]
                scores.append(float(clock.time("passive", self.passive.score, [image], [main.bbox])[0]))
                mesh = clock.time("landmarks", self.landmarks.predict, image, main.bbox)
                signals.append(measure(mesh.points, float(frame.time - t0), mesh.presence))
                observations.append(clock.time("embed", self.matcher.observe_many, [image], [main])[0])
        if frames == 0:
            raise MediaError(ReasonCode.MEDIA_CORRUPT, "no decodable frame")
        events = clock.time("challenge", detect_events, signals, ActionConfig())
        _, reasons = clock.time("challenge", verify_sequence, list(actions), events)
        passive = float(np.mean(scores)) if scores else 0.0
        if not observations or missing > 0.2 * frames:
            reasons.append(ReasonCode.FACE_NOT_FOUND)
        if passive < self.passive_threshold:
            reasons.append(ReasonCode.SPOOF_SUSPECTED)
        live = BaselineLiveness(not reasons, reasons, passive, self.passive_threshold, frames)
        return live, observations

    def run(self, card: bytes, video: bytes, actions: Sequence[str], expected_id_number: str | None) -> BaselineReport:
        clock = _Clock()
        t_all = time.perf_counter()
        card_res, reference = self.read_card(card, clock)
        live, probes = self.analyse_video(video, actions, clock)
        match: MatchResult | None = None
        if reference is not None and probes:
            match = clock.time("face_match", self.matcher.compare, reference, probes)
        ev = Evidence(id_card=card_res, liveness=live, card_match=match, expected_id_number=expected_id_number)
        decision = clock.time("decision", decide, ev, self.certifier.config)
        stages = dict(clock.ms)
        stages["total"] = (time.perf_counter() - t_all) * 1000
        return BaselineReport(
            decision.outcome.value,
            [r.value for r in decision.reasons],
            stages,
            live.frames_analyzed,
            None if match is None else match.similarity,
        )


def _to_bgr(frame: av.VideoFrame) -> np.ndarray:
    image: np.ndarray = frame.to_ndarray(format="bgr24")
    return image
