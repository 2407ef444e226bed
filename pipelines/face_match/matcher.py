"""Face matching: detect (5 landmarks) → align to the ArcFace 112×112 template → embed → cosine.

One reference (an ID-card portrait crop or a stored template) is compared with one or more probe
images or video frames; per-frame scores are kept as evidence and fused into one similarity.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from models.detectors import Detection
from models.packs import ModelPack, load_pack
from pipelines.errors import PipelineError
from pipelines.face_match.calibration import Calibration
from pipelines.face_match.pooling import pooled_embedding, pooling_mask
from pipelines.face_match.quality import FaceQuality, QualityConfig, measure_quality
from pipelines.face_match.result import Band, FaceObservation, FrameEvidence, MatchResult, Thresholds
from pipelines.reasons import ReasonCode

log = logging.getLogger(__name__)

ALIGNED_SIZE = 112


@dataclass(frozen=True)
class MatchConfig:
    # Averaging the embeddings of the crop and its mirror image: +0.15 d′ on the dev data for one extra embedding.
    flip_tta: bool = True
    accept_far: str = "1e-4"
    review_far: str = "1e-2"
    # A second face counts as ambiguous when its prominence (area × centrality) reaches this share of the first.
    ambiguity_ratio: float = 0.6
    quality: QualityConfig = field(default_factory=QualityConfig)


def align_face(image_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """Similarity-warp the 5 landmarks onto the ArcFace template (insightface ``face_align.norm_crop``)."""
    from insightface.utils import face_align  # lazy: as models/detectors.py SCRFDDetector

    with warnings.catch_warnings():
        # scikit-image deprecates the estimate() call insightface uses; the result is identical.
        warnings.simplefilter("ignore", FutureWarning)
        aligned: np.ndarray = face_align.norm_crop(image_bgr, landmark=kps.astype(np.float32), image_size=ALIGNED_SIZE)
    return aligned


def prominence(det: Detection, image_shape: tuple[int, ...]) -> float:
    h, w = image_shape[:2]
    cx, cy = (det.bbox[0] + det.bbox[2]) / 2, (det.bbox[1] + det.bbox[3]) / 2
    dist = math.hypot(cx - w / 2, cy - h / 2) / (0.5 * math.hypot(w, h))
    return max(det.width, 0.0) * max(det.height, 0.0) * max(0.05, 1.0 - dist)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


class FaceMatcher:
    """Main class of the face-matching stage. Models come from a pack; thresholds from a calibration file."""

    def __init__(
        self,
        pack: ModelPack | None = None,
        config: MatchConfig | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.pack = pack or load_pack()
        self.config = config or MatchConfig()
        self._calibration = calibration

    @property
    def detector(self):  # type: ignore[no-untyped-def]
        return self.pack.detector

    @property
    def recognizer(self):  # type: ignore[no-untyped-def]
        return self.pack.recognizer

    @property
    def calibration(self) -> Calibration:
        if self._calibration is None:
            self._calibration = Calibration.load()
        return self._calibration

    @property
    def thresholds(self) -> Thresholds:
        return self.calibration.thresholds(
            self.recognizer.version, self.config.flip_tta, self.config.accept_far, self.config.review_far
        )

    def model_versions(self) -> dict[str, str]:
        return {"detector": self.detector.version, "recognizer": self.recognizer.version}

    # -- detection -------------------------------------------------------------------------------------

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        dets: list[Detection] = self.detector.detect(image_bgr)
        return sorted(dets, key=lambda d: -prominence(d, image_bgr.shape))

    def primary_face(self, image_bgr: np.ndarray, allow_multiple: bool = False) -> tuple[Detection, int]:
        """The one face the image is about, and how many faces were found.

        Raises FACE_NOT_FOUND, or FACE_MULTIPLE when another face is about as prominent (unless allowed).
        """
        dets = self.detect(image_bgr)
        if not dets:
            raise PipelineError(ReasonCode.FACE_NOT_FOUND, "no face detected")
        if len(dets) > 1 and not allow_multiple:
            first, second = prominence(dets[0], image_bgr.shape), prominence(dets[1], image_bgr.shape)
            if second >= self.config.ambiguity_ratio * first:
                raise PipelineError(ReasonCode.FACE_MULTIPLE, f"{len(dets)} faces of similar prominence")
        return dets[0], len(dets)

    # -- embedding -------------------------------------------------------------------------------------

    def embed_aligned(self, aligned: Sequence[np.ndarray]) -> np.ndarray:
        crops = list(aligned)
        emb: np.ndarray = self.recognizer.embed(crops)
        if self.config.flip_tta and crops:
            flipped: np.ndarray = self.recognizer.embed([np.ascontiguousarray(c[:, ::-1]) for c in crops])
            emb = emb + flipped
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb

    def observe(
        self, image_bgr: np.ndarray, detection: Detection | None = None, allow_multiple: bool = False
    ) -> FaceObservation:
        return self.observe_many([image_bgr], [detection], allow_multiple)[0]

    def observe_many(
        self,
        images_bgr: Sequence[np.ndarray],
        detections: Sequence[Detection | None] | None = None,
        allow_multiple: bool = False,
    ) -> list[FaceObservation]:
        """Detect (unless given), align, measure quality and embed several images in one recognizer batch."""
        given = list(detections) if detections is not None else [None] * len(images_bgr)
        prepared: list[tuple[Detection, int, np.ndarray, FaceQuality]] = []
        for image, det in zip(images_bgr, given, strict=True):
            count = 1
            if det is None:
                det, count = self.primary_face(image, allow_multiple)
            aligned = align_face(image, det.kps)
            quality = measure_quality(aligned, det.kps, det.bbox, self.config.quality)
            prepared.append((det, count, aligned, quality))
        embeddings = self.embed_aligned([p[2] for p in prepared])
        return [
            FaceObservation(det.bbox, det.score, det.kps, quality, embeddings[i], count)
            for i, (det, count, _, quality) in enumerate(prepared)
        ]

    # -- comparison ------------------------------------------------------------------------------------

    def compare(
        self, reference: FaceObservation, probes: Sequence[FaceObservation], thresholds: Thresholds | None = None
    ) -> MatchResult:
        """Fuse the probes into one similarity against the reference and decide the band."""
        if not probes:
            raise PipelineError(ReasonCode.FACE_NOT_FOUND, "no probe face to compare")
        th = thresholds or self.thresholds
        usable = [p.quality.ok for p in probes]
        use_mask = pooling_mask(probes)
        sims = [cosine(reference.embedding, p.embedding) for p in probes]
        fused = cosine(reference.embedding, pooled_embedding(probes))
        frames = [
            FrameEvidence(i, s, u, p.quality) for i, (s, u, p) in enumerate(zip(sims, use_mask, probes, strict=True))
        ]
        flags = sorted(
            {f.value for f in reference.quality.flags} | ({"probe_low_quality"} if not any(usable) else set())
        )
        band = th.band(fused)
        reasons: list[ReasonCode] = []
        if flags:
            reasons.append(ReasonCode.FACE_LOW_QUALITY)
            if band is Band.ACCEPT:
                # A confident score on a poor image is not a confident decision: a person looks at it.
                band = Band.REVIEW
        if band is Band.REJECT:
            reasons.append(ReasonCode.FACE_MISMATCH)
        return MatchResult(fused, band, th, frames, reasons, flags, reference, self.model_versions())

    def match_images(
        self, reference_bgr: np.ndarray, probes_bgr: Sequence[np.ndarray], allow_multiple_in_probes: bool = False
    ) -> MatchResult:
        reference = self.observe(reference_bgr)
        probes = self.observe_many(probes_bgr, allow_multiple=allow_multiple_in_probes)
        return self.compare(reference, probes)
