"""One session factory for every model: execution providers and thread counts in one place.

CUDA is used when onnxruntime-gpu is installed and a GPU is visible, unless ``PENSION_CERT_DEVICE=cpu``.
``PENSION_CERT_ORT_THREADS`` sets intra-op threads (default: all cores, at most 4).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from models.errors import ModelShapeMismatchError
from models.manifest import ModelSpec

log = logging.getLogger(__name__)

ENV_DEVICE = "PENSION_CERT_DEVICE"
ENV_THREADS = "PENSION_CERT_ORT_THREADS"


def providers() -> list[str]:
    available = ort.get_available_providers()
    wanted = os.environ.get(ENV_DEVICE, "auto").lower()
    if wanted != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def thread_count() -> int:
    env = os.environ.get(ENV_THREADS)
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(os.cpu_count() or 1, 4))


def create_session(
    source: Path | bytes, optimize_graph: bool = False, threads: int | None = None
) -> ort.InferenceSession:
    """An ORT session for a model file, or for its bytes (as verified by ``ModelStore.load_bytes``: the bytes
    hashed are the bytes run, no second read by path); ``optimize_graph`` first applies ``models.graph.optimize``
    in memory.

    Only for graphs the rewrites were measured on (the PP-OCR models): see ``models/graph.py``.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or thread_count()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A pipeline runs several small sessions back to back: spinning thread pools of one session starve the
    # next (measured: 41 ms instead of 18 ms per face with 2 threads), and they burn CPU other workers need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ORT warns on every batched run of graphs that declare batch 1 outputs; that is noise, not news.
    options.log_severity_level = 3
    if optimize_graph:
        import onnx  # only sessions that ask for the rewrite pay for importing onnx

        from models import graph

        loaded = onnx.load_from_string(source) if isinstance(source, bytes) else onnx.load(str(source))
        model, rewrites = graph.optimize(loaded)
        log.info("%s: %d graph rewrites before session creation", model.graph.name, rewrites)
        return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=providers())
    model_source = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(model_source, sess_options=options, providers=providers())


def _dims_match(expected: tuple[int, ...], actual: list[Any]) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        if want == -1:
            continue
        if not isinstance(got, int) or got != want:
            return False
    return True


class OnnxModel:
    """Base of every model class: owns its session and the preprocessing constants of its spec."""

    def __init__(self, spec: ModelSpec, path: Path, session: ort.InferenceSession | None = None) -> None:
        self.spec = spec
        self.path = path
        self.session = session if session is not None else create_session(path)
        inputs = self.session.get_inputs()
        first = inputs[0]
        if first.name != spec.input_name or not _dims_match(spec.shape, list(first.shape)):
            raise ModelShapeMismatchError(
                spec.name, str(path), (spec.input_name, list(spec.shape)), (first.name, list(first.shape))
            )
        self.input_name: str = first.name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.mean = np.asarray(spec.mean, dtype=np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(spec.std, dtype=np.float32).reshape(1, 3, 1, 1)
        self.input_dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        return self.spec.version

    def blob(self, images_bgr: list[np.ndarray]) -> np.ndarray:
        """Stack same-size BGR uint8 images into an NCHW tensor in the model's colour order and scale."""
        std = self.spec.std
        uniform = std[0] == std[1] == std[2]
        # One OpenCV call does the channel swap, mean subtraction, scaling and NCHW layout (several times
        # faster than the same steps in numpy on a 640×640 detector input).
        out: np.ndarray = cv2.dnn.blobFromImages(
            images_bgr,
            scalefactor=1.0 / std[0] if uniform else 1.0,
            mean=self.spec.mean,
            swapRB=self.spec.colour == "RGB",
            crop=False,
        )
        if not uniform:
            out /= self.std
        return out if self.input_dtype == np.float32 else out.astype(self.input_dtype)

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self.session.run(self.output_names, {self.input_name: blob})
        return outputs
