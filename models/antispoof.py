"""Passive anti-spoofing, one class per ONNX file: MiniFASNet (minivision Silent-Face-Anti-Spoofing) and the
CelebA-Spoof binary model (hairymax/Face-AntiSpoofing, evaluation only: no licence stated).

Each model sees its own crop: the face box scaled by ``spec.crop_scale`` about its centre, shrunk to fit the
image and shifted (not clipped) to stay inside it, exactly as minivision's ``CropImage._get_new_box`` does;
the models were trained on such crops, so a clipped or differently centred crop changes their output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from models.manifest import ModelSpec
from models.runtime import OnnxModel

REAL_CLASS = 1  # minivision labels: 0 = print, 1 = real, 2 = replay


def minivision_crop_box(
    image_w: int, image_h: int, bbox: tuple[float, float, float, float], scale: float
) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) inclusive pixel box of the scaled crop, kept inside the image."""
    x, y = bbox[0], bbox[1]
    box_w, box_h = max(bbox[2] - bbox[0], 1.0), max(bbox[3] - bbox[1], 1.0)
    scale = min((image_h - 1) / box_h, (image_w - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = x + box_w / 2, y + box_h / 2
    x1, y1, x2, y2 = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > image_w - 1:
        x1 -= x2 - image_w + 1
        x2 = image_w - 1
    if y2 > image_h - 1:
        y1 -= y2 - image_h + 1
        y2 = image_h - 1
    return int(max(x1, 0)), int(max(y1, 0)), int(x2), int(y2)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


class FaceCropClassifier(OnnxModel):
    """A face crop (each model's own ``crop``) → softmax over the model's classes; ``LIVE_CLASS`` is the live one."""

    LIVE_CLASS: int
    N_CLASSES: int
    DEFAULT_CROP_SCALE: float

    def __init__(self, spec: ModelSpec, path: Path, session: ort.InferenceSession | None = None) -> None:
        super().__init__(spec, path, session)
        self.crop_scale = float(spec.crop_scale or self.DEFAULT_CROP_SCALE)
        self.input_hw = (int(spec.shape[2]), int(spec.shape[3]))

    def crop(self, image_bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
        raise NotImplementedError

    def probabilities(
        self, images_bgr: Sequence[np.ndarray], bboxes: Sequence[tuple[float, float, float, float]]
    ) -> np.ndarray:
        """N×classes probabilities, one row per (image, face box). The graphs take batch 1."""
        if not images_bgr:
            return np.zeros((0, self.N_CLASSES), dtype=np.float32)
        crops = [self.crop(img, box) for img, box in zip(images_bgr, bboxes, strict=True)]
        blob = self.blob(crops)
        logits = np.vstack([np.asarray(self.run(blob[i : i + 1])[0]).reshape(1, -1) for i in range(len(crops))])
        return _softmax(logits.astype(np.float32))

    def real_scores(
        self, images_bgr: Sequence[np.ndarray], bboxes: Sequence[tuple[float, float, float, float]]
    ) -> np.ndarray:
        """Probability of the live class per face (0..1)."""
        return self.probabilities(images_bgr, bboxes)[:, self.LIVE_CLASS]


class MiniFASNet(FaceCropClassifier):
    """MiniFASNet V2 / V1SE: BGR 0-255 80×80 crop → softmax over (print, real, replay)."""

    LIVE_CLASS = REAL_CLASS
    N_CLASSES = 3
    DEFAULT_CROP_SCALE = 2.7

    def crop(self, image_bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
        h, w = image_bgr.shape[:2]
        x1, y1, x2, y2 = minivision_crop_box(w, h, bbox, self.crop_scale)
        patch = image_bgr[y1 : y2 + 1, x1 : x2 + 1]
        out: np.ndarray = cv2.resize(patch, (self.input_hw[1], self.input_hw[0]))
        return out


def square_crop(
    image: np.ndarray, bbox: tuple[float, float, float, float], scale: float, border: int = cv2.BORDER_CONSTANT
) -> np.ndarray:
    """A square of ``scale`` × the box's longer side about its centre; the part outside the image is black
    (``border`` constant, hairymax's ``increased_crop``) or mirrored (``cv2.BORDER_REFLECT_101``, SURI's ``crop``):
    both models were trained on such crops (padding, not shifting)."""
    h, w = image.shape[:2]
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1.0) * scale
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    n = max(int(side), 1)
    x1, y1 = max(x0, 0), max(y0, 0)
    x2, y2 = min(x0 + n, w), min(y0 + n, h)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((n, n, 3), dtype=image.dtype)
    pads = (y1 - y0, n - (y2 - y0), x1 - x0, n - (x2 - x0))  # top, bottom, left, right
    out: np.ndarray = cv2.copyMakeBorder(image[y1:y2, x1:x2], *pads, border, value=(0, 0, 0))
    return out


class CelebASpoofBinary(FaceCropClassifier):
    """MiniFASNetV2-SE trained on CelebA-Spoof (live / spoof): RGB /255 128×128 crop → softmax, class 0 = live."""

    LIVE_CLASS = 0
    N_CLASSES = 2
    DEFAULT_CROP_SCALE = 1.5

    def crop(self, image_bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
        patch = square_crop(image_bgr, bbox, self.crop_scale)
        out: np.ndarray = cv2.resize(patch, (self.input_hw[1], self.input_hw[0]))
        return out


class SuriMiniFAS(CelebASpoofBinary):
    """SURI MiniFAS (johnraivenolazo/face-antispoof-onnx, Apache-2.0; MiniFASNetV2-SE trained on CelebA-Spoof):
    RGB /255 128×128, the crop mirrored at the image border and resized with Lanczos (enlarging) or area
    averaging (shrinking), as its ``preprocess.py``; logits (real, spoof)."""

    def crop(self, image_bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
        patch = square_crop(image_bgr, bbox, self.crop_scale, cv2.BORDER_REFLECT_101)
        enlarge = self.input_hw[0] > patch.shape[0]
        interpolation = cv2.INTER_LANCZOS4 if enlarge else cv2.INTER_AREA
        out: np.ndarray = cv2.resize(patch, (self.input_hw[1], self.input_hw[0]), interpolation=interpolation)
        return out
