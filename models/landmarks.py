"""Dense face landmarks: MediaPipe Face Mesh v1 (468 points) as an ONNX graph.

Input: a square crop of about ``spec.crop_scale`` (1.5) × the face box, resized to 192×192, RGB in [0, 1].
Output: 468 (x, y, z) points in crop pixels (z is relative depth on the x scale) and a face-presence
probability; both are mapped back to the input image here so callers never see crop coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from models.manifest import ModelSpec
from models.runtime import OnnxModel

N_POINTS = 468


@dataclass(frozen=True)
class FaceMesh:
    """Landmarks (468×3, image pixels; z scaled like x) and face-presence probability of one face."""

    points: np.ndarray
    presence: float

    def bbox(self) -> tuple[float, float, float, float]:
        xy = self.points[:, :2]
        x1, y1 = xy.min(axis=0)
        x2, y2 = xy.max(axis=0)
        return float(x1), float(y1), float(x2), float(y2)


def square_crop_box(bbox: tuple[float, float, float, float], scale: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop around a face box."""
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    side = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) * scale
    return cx, cy, max(side, 8.0)


class MediaPipeFaceMesh(OnnxModel):
    """MediaPipe face landmark v1 (192×192): one face crop in, 468 landmarks + presence out."""

    def __init__(self, spec: ModelSpec, path: Path, session: ort.InferenceSession | None = None) -> None:
        super().__init__(spec, path, session)
        self.size = int(spec.shape[2])
        self.crop_scale = float(spec.crop_scale or 1.5)
        names = self.output_names
        # Identify outputs by size, not by the converter's generated names.
        shapes = {o.name: int(np.prod([d for d in o.shape if isinstance(d, int)])) for o in self.session.get_outputs()}
        self._points_name = next(n for n in names if shapes[n] == N_POINTS * 3)
        self._presence_name = next(n for n in names if shapes[n] == 1)

    def predict(self, image_bgr: np.ndarray, bbox: tuple[float, float, float, float]) -> FaceMesh:
        """Landmarks of the face in ``bbox`` (x1, y1, x2, y2 in image pixels)."""
        cx, cy, side = square_crop_box(bbox, self.crop_scale)
        k = self.size / side
        # One affine warp does crop + resize + border fill for boxes that leave the frame.
        matrix = np.array([[k, 0.0, self.size / 2 - k * cx], [0.0, k, self.size / 2 - k * cy]], dtype=np.float64)
        crop = cv2.warpAffine(
            image_bgr, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        outputs = dict(zip(self.output_names, self.run(self.blob([crop])), strict=True))
        pts = np.asarray(outputs[self._points_name], dtype=np.float32).reshape(N_POINTS, 3)
        logit = float(np.asarray(outputs[self._presence_name]).reshape(-1)[0])
        presence = 1.0 / (1.0 + np.exp(-logit))
        out = np.empty_like(pts)
        out[:, 0] = (pts[:, 0] - self.size / 2) / k + cx
        out[:, 1] = (pts[:, 1] - self.size / 2) / k + cy
        out[:, 2] = pts[:, 2] / k
        return FaceMesh(out, float(presence))
