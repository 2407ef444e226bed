"""Face recognizers: 112×112 ArcFace-aligned crops → L2-normalised embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from models.manifest import ModelSpec
from models.runtime import OnnxModel

ALIGNED_SIZE = 112


class Recognizer(Protocol):
    name: str
    version: str
    dim: int

    def embed(self, aligned_bgr: list[np.ndarray]) -> np.ndarray:
        """Embeddings (N×dim, L2-normalised) of aligned 112×112 BGR crops."""
        ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


class _BaseRecognizer(OnnxModel):
    def __init__(self, spec: ModelSpec, path: Path, session: ort.InferenceSession | None = None) -> None:
        super().__init__(spec, path, session)
        self.dim = int(spec.embedding_dim or self.session.get_outputs()[0].shape[-1])
        self.batchable = spec.shape[0] == -1

    def _forward(self, blob: np.ndarray) -> np.ndarray:
        return np.asarray(self.run(blob)[0], dtype=np.float32).reshape(blob.shape[0], -1)

    def embed(self, aligned_bgr: list[np.ndarray]) -> np.ndarray:
        if not aligned_bgr:
            return np.zeros((0, self.dim), dtype=np.float32)
        blob = self.blob(aligned_bgr)
        if self.batchable:
            raw = self._forward(blob)
        else:
            # Graphs exported with batch fixed at 1 are fed one crop at a time, transparently.
            raw = np.vstack([self._forward(blob[i : i + 1]) for i in range(blob.shape[0])])
        return l2_normalise(raw)


class MobileFaceNetFoamliu(_BaseRecognizer):
    """foamliu MobileFaceNet, 128-d: RGB, ImageNet mean/std; batch fixed at 1."""


class ArcFaceRecognizer(_BaseRecognizer):
    """InsightFace ArcFace-family recognizers (w600k_r50, w600k_mbf_int8), batched.

    Uses insightface's ``ArcFaceONNX`` for the graph bookkeeping; the normalisation constants come from
    our manifest (insightface guesses them from node names, which the int8 graph does not have).
    """

    def __init__(self, spec: ModelSpec, path: Path, session: ort.InferenceSession | None = None) -> None:
        super().__init__(spec, path, session)
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX  # lazy: as models/detectors.py SCRFDDetector

        self._impl = ArcFaceONNX(model_file=str(path), session=self.session)
        self._impl.input_mean = float(spec.mean[0])
        self._impl.input_std = float(spec.std[0])

    def embed(self, aligned_bgr: list[np.ndarray]) -> np.ndarray:
        if not aligned_bgr:
            return np.zeros((0, self.dim), dtype=np.float32)
        # ArcFaceONNX.get_feat does the swapRB + (x - mean) / std blob in one cv2 call, batched.
        raw = np.asarray(self._impl.get_feat(list(aligned_bgr)), dtype=np.float32)
        return l2_normalise(raw.reshape(len(aligned_bgr), -1))
