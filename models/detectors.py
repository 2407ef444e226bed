"""Face detectors with 5 landmarks: YuNet (default pack) and SCRFD (insightface pack).

Landmark order everywhere: image-left eye, image-right eye, nose tip, image-left mouth corner,
image-right mouth corner (the ArcFace template order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from models.manifest import ModelSpec
from models.runtime import OnnxModel

DEFAULT_SCORE_THRESHOLD = 0.6
NMS_IOU = 0.4
_YUNET_STRIDES = (8, 16, 32)
_MAX_DYNAMIC_SIDE = 640


@dataclass(frozen=True)
class Detection:
    """One face: box (x1, y1, x2, y2) in input-image pixels, confidence, 5 landmarks (5×2)."""

    bbox: tuple[float, float, float, float]
    score: float
    kps: np.ndarray

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


class FaceDetector(Protocol):
    name: str
    version: str

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """All faces above the score threshold, best first."""
        ...


def _letterbox(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio into a width×height canvas anchored top-left."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interp)
    return canvas, scale


def dynamic_input_size(image: np.ndarray, max_side: int = _MAX_DYNAMIC_SIDE) -> tuple[int, int]:
    """Network input (w, h) for a dynamic-shape detector: downscale only, sides multiples of 32.

    Small images are not blown up: upscaling a close-up face beyond the sizes the detectors were trained on
    costs time and lowers their confidence.
    """
    ih, iw = image.shape[:2]
    scale = min(1.0, max_side / max(ih, iw))
    return max(32, int(np.ceil(iw * scale / 32)) * 32), max(32, int(np.ceil(ih * scale / 32)) * 32)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    if len(boxes) == 0:
        return []
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    keep = cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), 0.0, iou)
    return [int(i) for i in np.asarray(keep).reshape(-1)]


class YuNetDetector(OnnxModel):
    """YuNet (libfacedetection): BGR, raw 0-255, letterboxed; fixed 640×640 or dynamic H×W."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        session: ort.InferenceSession | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    ) -> None:
        super().__init__(spec, path, session)
        self.score_threshold = score_threshold
        self._anchors: dict[tuple[int, int, int], np.ndarray] = {}

    def _input_size(self, image: np.ndarray) -> tuple[int, int]:
        _, _, h, w = self.spec.shape
        if h > 0 and w > 0:
            return w, h
        return dynamic_input_size(image)

    def _anchor_grid(self, rows: int, cols: int, stride: int) -> np.ndarray:
        key = (rows, cols, stride)
        if key not in self._anchors:
            ys, xs = np.mgrid[:rows, :cols]
            self._anchors[key] = (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)
        return self._anchors[key]

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        width, height = self._input_size(image_bgr)
        canvas, scale = _letterbox(image_bgr, width, height)
        outputs = dict(zip(self.output_names, self.run(self.blob([canvas])), strict=True))
        boxes, scores, kpss = [], [], []
        for stride in _YUNET_STRIDES:
            cls = outputs[f"cls_{stride}"][0, :, 0]
            obj = outputs[f"obj_{stride}"][0, :, 0]
            score = np.sqrt(np.clip(cls * obj, 0.0, 1.0))
            keep = score >= self.score_threshold
            if not keep.any():
                continue
            anchors = self._anchor_grid(height // stride, width // stride, stride)[keep]
            bbox = outputs[f"bbox_{stride}"][0][keep]
            kps = outputs[f"kps_{stride}"][0][keep].reshape(-1, 5, 2)
            centre = bbox[:, :2] * stride + anchors
            size = np.exp(bbox[:, 2:4]) * stride
            boxes.append(np.hstack([centre - size / 2, centre + size / 2]))
            kpss.append(kps * stride + anchors[:, None, :])
            scores.append(score[keep])
        if not boxes:
            return []
        all_boxes = np.vstack(boxes) / scale
        all_kps = np.vstack(kpss) / scale
        all_scores = np.concatenate(scores)
        return _to_detections(all_boxes, all_scores, all_kps, _nms(all_boxes, all_scores, NMS_IOU))


class SCRFDDetector(OnnxModel):
    """SCRFD through insightface's own decoder (`insightface.model_zoo.scrfd.SCRFD`), sharing our session."""

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        session: ort.InferenceSession | None = None,
        score_threshold: float = 0.5,
        max_side: int = _MAX_DYNAMIC_SIDE,
    ) -> None:
        super().__init__(spec, path, session)
        self.max_side = max_side
        # Imported here: insightface pulls in onnx and ml_dtypes (about a second), which every process that only
        # imports the pipelines (the API, a `pension-cert revoke`) would pay without ever detecting a face.
        from insightface.model_zoo.scrfd import SCRFD

        self._impl = SCRFD(model_file=str(path), session=self.session, static_shape_sessions=False)
        self._impl.prepare(0, input_size=(max_side, max_side), det_thresh=score_threshold, nms_thresh=NMS_IOU)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        size = dynamic_input_size(image_bgr, self.max_side)
        det, kpss = self._impl.detect(image_bgr, input_size=size)
        if det.shape[0] == 0 or kpss is None:
            return []
        return _to_detections(det[:, :4], det[:, 4], kpss, list(range(det.shape[0])))


def _to_detections(boxes: np.ndarray, scores: np.ndarray, kps: np.ndarray, keep: list[int]) -> list[Detection]:
    order = sorted(keep, key=lambda i: -float(scores[i]))
    return [
        Detection(
            bbox=(float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 2]), float(boxes[i, 3])),
            score=float(scores[i]),
            kps=np.asarray(kps[i], dtype=np.float32).reshape(5, 2),
        )
        for i in order
    ]
