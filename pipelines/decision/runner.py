"""The whole offline certification: ID card → liveness → face match (card portrait and enrolled template vs
the video's best frames) → decision. Used by the service worker and by `pension-cert certify`.

Models load once per `Certifier` (so once per worker process); every stage failure becomes a reason code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from models.ocr_pins import ocr_versions
from models.packs import ModelPack, load_pack
from pipelines.decision.result import Decision
from pipelines.decision.rules import DecisionConfig, Evidence, decide
from pipelines.errors import MediaError, PipelineError
from pipelines.face_match import FaceMatcher, FaceObservation, MatchResult
from pipelines.face_match.calibration import Calibration
from pipelines.face_match.pooling import pooled_template
from pipelines.id_card import IdCardReader, IdCardResult
from pipelines.liveness import LivenessChecker, LivenessConfig, LivenessResult, VideoFingerprintStore
from pipelines.liveness.duplicates import check_and_record
from pipelines.liveness.light import LightSequence
from pipelines.media import decode_image
from pipelines.reasons import ReasonCode
from pipelines.stop import checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Template:
    """An enrolled face: the pooled embedding of a previous accepted certification."""

    embedding: np.ndarray
    model: str


@dataclass
class CertificationReport:
    decision: Decision
    id_card: IdCardResult | None
    liveness: LivenessResult | None
    card_match: MatchResult | None
    template_match: MatchResult | None
    new_template: Template | None  # what to enrol if the decision is accepted (and consent given)
    # Seconds per stage (id_card, liveness, face_match, decision, total): the service exports them as metrics.
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self, verbose: bool = False) -> dict[str, Any]:
        return {
            **self.decision.to_dict(),
            "id_card": self.id_card.to_dict() if self.id_card else None,
            "liveness": self.liveness.to_dict(verbose) if self.liveness else None,
            "card_match": self.card_match.to_dict() if self.card_match else None,
            "template_match": self.template_match.to_dict() if self.template_match else None,
        }


class Certifier:
    def __init__(
        self,
        pack: ModelPack | str | None = None,
        config: DecisionConfig | None = None,
        face_calibration: str = "",
        light_mode: str = "observe",
    ) -> None:
        """``face_calibration``: the face-match calibration file (a deployment's own copy); empty: the stage's
        default (PENSION_CERT_FACE_CALIBRATION, else the shipped file). ``light_mode``: the screen-light
        challenge's mode (``LivenessConfig.light_mode``)."""
        self.pack = pack if isinstance(pack, ModelPack) else load_pack(pack)
        self.config = config or DecisionConfig()
        self.face_calibration = face_calibration
        self.light_mode = light_mode

    @cached_property
    def matcher(self) -> FaceMatcher:
        calibration = Calibration.load(self.face_calibration) if self.face_calibration else None
        return FaceMatcher(self.pack, calibration=calibration)

    @cached_property
    def reader(self) -> IdCardReader:
        return IdCardReader(self.matcher)

    @cached_property
    def liveness(self) -> LivenessChecker:
        # Duplicate videos are checked here, per run, against the caller's store (see `run`), not in the
        # checker's process-wide memory: a job redone after a crash must not count as its own duplicate.
        config = LivenessConfig(check_duplicates=False, light_mode=self.light_mode)
        return LivenessChecker(self.pack, config, matcher=self.matcher)

    def warm_up(self) -> None:
        """Load every model now (a worker does this once at start, not on its first job)."""
        _ = (self.matcher.detector, self.matcher.recognizer, self.reader, self.liveness)

    def run(
        self,
        card: bytes | np.ndarray,
        video: bytes | Path,
        actions: Sequence[str] | None,
        expected_id_number: str | None = None,
        template: Template | None = None,
        fingerprints: VideoFingerprintStore | None = None,
        today: dt.date | None = None,
        light: LightSequence | None = None,
    ) -> CertificationReport:
        """``today``: the date the card's validity is judged on (the service gives the bureau's calendar date the
        media were sent on); None: this machine's own date (the offline commands). Inside a ``pipelines.stop`` scope
        the run stops (``Stopped``) between its stages and within the video's decode once the scope says so.
        ``light``: the screen-light sequence the capture page showed (None: none was issued)."""
        stage_errors: list[ReasonCode] = []
        t0 = time.perf_counter()
        id_card = self._read_card(card, stage_errors, today)
        t1 = time.perf_counter()
        checkpoint()
        live = self.liveness.check(video, actions, light)
        if fingerprints is not None and check_and_record(fingerprints, live.video_sha256, live.frame_hashes):
            stage_errors.append(ReasonCode.VIDEO_DUPLICATE)
        t2 = time.perf_counter()
        checkpoint()
        probes = [f.observation for f in live.best_frames if f.observation is not None]
        card_match = self._match_card(id_card, probes, stage_errors)
        template_match = self._match_template(template, probes)
        t3 = time.perf_counter()
        versions = {**self.pack.versions(("detector", "recognizer")), **_versions(live), **_ocr_version()}
        ev = Evidence(
            id_card=id_card,
            liveness=live,
            card_match=card_match,
            template_match=template_match,
            expected_id_number=expected_id_number,
            stage_errors=stage_errors,
            model_versions=versions,
        )
        decision = decide(ev, self.config)
        t4 = time.perf_counter()
        timings = {
            "id_card": t1 - t0,
            "liveness": t2 - t1,
            "face_match": t3 - t2,
            "decision": t4 - t3,
            "total": t4 - t0,
        }
        return CertificationReport(decision, id_card, live, card_match, template_match, self._pool(probes), timings)

    def _read_card(
        self, card: bytes | np.ndarray, stage_errors: list[ReasonCode], today: dt.date | None
    ) -> IdCardResult | None:
        try:
            bgr = decode_image(card) if isinstance(card, bytes) else card
        except MediaError as exc:
            stage_errors.append(exc.reason)
            return None
        return self.reader.read(bgr, today)

    def _match_card(
        self, id_card: IdCardResult | None, probes: list[FaceObservation], stage_errors: list[ReasonCode]
    ) -> MatchResult | None:
        if id_card is None or id_card.portrait is None or not probes:
            return None
        try:
            # The reader already found the face in the crop: detecting it again would cost ~15 ms for nothing.
            reference = self.matcher.observe(id_card.portrait, id_card.portrait_face, allow_multiple=True)
        except PipelineError as exc:
            log.info("card portrait unusable: %s", exc.reason)
            return None
        return self.matcher.compare(reference, probes)

    def _match_template(self, template: Template | None, probes: list[FaceObservation]) -> MatchResult | None:
        if template is None or not probes:
            return None
        if template.model != self.matcher.recognizer.version:
            # An embedding from another recognizer is not comparable: fall back to the card alone.
            log.info(
                "enrolled template from %s, recognizer is %s: ignored",
                template.model,
                self.matcher.recognizer.version,
            )
            return None
        ref = probes[0]
        # The template's quality was judged when it was enrolled: it carries no flags of its own here.
        enrolled_quality = dataclasses.replace(ref.quality, flags=())
        reference = FaceObservation(ref.bbox, 1.0, ref.kps, enrolled_quality, template.embedding, 1)
        return self.matcher.compare(reference, probes)

    def _pool(self, probes: list[FaceObservation]) -> Template | None:
        pooled = pooled_template(probes)
        return None if pooled is None else Template(pooled, str(self.matcher.recognizer.version))


def _ocr_version() -> dict[str, str]:
    # The ID-card OCR models ship inside the rapidocr package; its version does not pin their bytes: each model's
    # pinned hash does (pipelines/id_card/ocr_pins.py; the engine refuses any other file).
    try:
        package = {"id_card:ocr": "rapidocr_onnxruntime@" + importlib.metadata.version("rapidocr-onnxruntime")}
    except importlib.metadata.PackageNotFoundError:
        return {}
    return {**package, **ocr_versions()}


def _versions(live: LivenessResult) -> dict[str, str]:
    models = getattr(live, "models", None)
    return {f"liveness:{k}": str(v) for k, v in models.items()} if isinstance(models, dict) else {}
