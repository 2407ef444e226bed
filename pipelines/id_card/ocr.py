"""Thin, fast access to the PP-OCR models shipped in the ``rapidocr-onnxruntime`` wheel.

RapidOCR's own pipeline pads every text line to at least 320 px and batches lines of different widths, so short
fields (sex, ethnicity) cost as much as long ones. Here each line is recognised at its own width, and the raw
per-time-step probabilities are kept so a field can be decoded again under a character constraint (the ID number
only holds digits and X) at no extra model cost.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rapidocr_onnxruntime
from rapidocr_onnxruntime.ch_ppocr_cls import TextClassifier
from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess
from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode
from rapidocr_onnxruntime.utils import read_yaml

from models import ocr_pins
from models.runtime import create_session, thread_count
from pipelines.id_card.geometry import LevelView, apply, edge_extent, shrunk_size, upright_transform

log = logging.getLogger(__name__)

REC_HEIGHT = 48
_PKG_DIR = Path(rapidocr_onnxruntime.__file__).resolve().parent


@dataclass
class TextLine:
    """One recognised line: text, mean confidence, per-character confidences and its quad (tl, tr, br, bl)."""

    text: str
    score: float
    char_scores: list[float]
    quad: np.ndarray
    probs: np.ndarray = field(repr=False)  # (T, C) softmax output, for constrained re-decoding; T = 0: not read
    # Fraction of the quad's length before the part that was read: a caption cut off unread (see ``captions``).
    entry_from: float = 0.0

    def along(self, positions: list[float] | np.ndarray) -> np.ndarray:
        """Positions (0–1) within the read part → fractions along the whole quad."""
        return self.entry_from + np.asarray(positions, float) * (1.0 - self.entry_from)

    @property
    def center(self) -> tuple[float, float]:
        c = self.quad.mean(axis=0)
        return float(c[0]), float(c[1])

    @property
    def height(self) -> float:
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.quad.tolist()
        return (math.hypot(x3 - x0, y3 - y0) + math.hypot(x2 - x1, y2 - y1)) / 2

    @property
    def x1(self) -> float:
        return float(self.quad[:, 0].min())

    @property
    def x2(self) -> float:
        return float(self.quad[:, 0].max())


def _config() -> dict[str, Any]:
    cfg: dict[str, Any] = read_yaml(str(_PKG_DIR / "config.yaml"))
    threads = thread_count()
    for section in ("Det", "Cls", "Rec"):
        cfg[section]["model_path"] = str(_PKG_DIR / cfg[section]["model_path"])
        cfg[section]["intra_op_num_threads"] = threads
        cfg[section]["inter_op_num_threads"] = 1
    return cfg


def _width_batches(crops: list[np.ndarray], max_batch: int = 4) -> list[list[int]]:
    """Indices of crops of one height grouped by width (within 15%), narrowest first: little padding waste."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[:2])
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        if (
            last
            and len(last) < max_batch
            and crops[i].shape[0] == crops[last[0]].shape[0]
            and crops[i].shape[1] <= crops[last[0]].shape[1] * 1.15 + 8
        ):
            last.append(i)
        else:
            batches.append([i])
    return batches


def order_quad(pts: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl for a roughly upright quad."""
    pts = np.asarray(pts, np.float32).reshape(4, 2)
    s, d = pts.sum(axis=1), pts[:, 1] - pts[:, 0]
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray, height: int = REC_HEIGHT, squeeze: float = 1.0) -> np.ndarray:
    """Perspective-crop a quad given as (tl, tr, br, bl) straight to the recogniser's height (one warp);
    ``squeeze`` < 1 narrows it too (fewer time steps for the recogniser)."""
    q = np.asarray(quad, np.float32).reshape(4, 2)
    w = max(float(np.linalg.norm(q[1] - q[0])), float(np.linalg.norm(q[2] - q[3])))
    h = max(float(np.linalg.norm(q[3] - q[0])), float(np.linalg.norm(q[2] - q[1])), 1.0)
    out_w = max(8, round(w * height / h * squeeze))
    dst = np.array([[0, 0], [out_w, 0], [out_w, height], [0, height]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(image, m, (out_w, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class _Lane:
    """A callable session like RapidOCR's ``OrtInferSession``: ``lane(batch) -> outputs``."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = self.session.run(None, {self.input_name: batch})
        return out


class _DetPreProcess(DetPreProcess):  # type: ignore[misc]
    """RapidOCR's detector preprocessing in float32 and one layout pass (its own normalises in float64, then
    copies the transposed array: ≈ 4× slower for the same values)."""

    def __init__(self, max_side: int, mean: list[float], std: list[float]) -> None:
        super().__init__(max_side, "max", mean, std)
        self._mul = (self.scale / self.std).astype(np.float32).reshape(1, 3, 1, 1)
        self._sub = (self.mean / self.std).astype(np.float32).reshape(1, 3, 1, 1)

    def __call__(self, img: np.ndarray) -> np.ndarray | None:
        resized = self.resize(img)
        if resized is None:
            return None
        blob: np.ndarray = cv2.dnn.blobFromImage(resized)  # float32 NCHW, values unchanged
        blob *= self._mul
        blob -= self._sub
        return blob


class OcrEngine:
    """PP-OCRv4 detector + recogniser and the PP-OCR direction classifier, loaded once."""

    def __init__(self, optimize_graph: bool = True, parallel_rec: bool = True, models_dir: Path | None = None) -> None:
        """`models_dir`: where the three pinned models are (default: the package's own folder)."""
        # First, and refused unless each is the pinned file (ocr_pins.OcrModelError): every session used below
        # is built from these hashed bytes, never from the files again.
        verified = ocr_pins.verified_bytes(models_dir)
        cfg = _config()
        self.det = TextDetector(cfg["Det"])
        self.cls = TextClassifier(cfg["Cls"])
        self.rec = TextRecognizer(cfg["Rec"])
        # RapidOCR's sessions run with the memory arena off and spinning thread pools; the project's own session
        # options (arena on, no spinning) read a card 10–20% faster on 2 busy cores, same outputs.
        for holder, section in ((self.det.infer, "Det"), (self.cls.infer, "Cls"), (self.rec.session, "Rec")):
            holder.session = create_session(verified[section], optimize_graph=optimize_graph)
        # The character table is the rec model's metadata: read from the verified session, not RapidOCR's own.
        table = self.rec.session.session.get_modelmeta().custom_metadata_map["character"]
        self.rec.postprocess_op = CTCLabelDecode(character=table.splitlines())
        lanes = thread_count() if parallel_rec else 1
        self._rec_lanes = [
            _Lane(create_session(verified["Rec"], optimize_graph=optimize_graph, threads=1))
            for _ in range(lanes if lanes > 1 else 0)
        ]
        self._pool = ThreadPoolExecutor(max_workers=max(1, lanes), thread_name_prefix="ocr-rec")
        self.characters: list[str] = list(self.rec.postprocess_op.character)
        self._group_cache: dict[str, list[list[int]]] = {}
        self.full_config = cfg

    def detect(self, image: np.ndarray, max_side: int) -> list[np.ndarray]:
        """Text-line quads (image coordinates) found on ``image`` resized so its longer side is ``max_side``."""
        pre = _DetPreProcess(max_side, self.det.mean, self.det.std)
        self.det.get_preprocess = lambda _m: pre  # type: ignore[method-assign]
        boxes, _ = self.det(image)
        if boxes is None or len(boxes) == 0:
            return []
        return [np.asarray(b, np.float32) for b in boxes]

    def detect_turned(
        self, image: np.ndarray, max_side: int, angle_deg: float, crop: bool = False, view: LevelView | None = None
    ) -> list[np.ndarray]:
        """``detect`` on a copy scaled to ``max_side`` and turned by ``angle_deg``; quads in image coordinates.

        With ``crop``, only the part of the turned copy that holds strong edges (the card, in most photos) is
        passed to the detector: the turned canvas is up to twice the photo's area, mostly background. A ``view``
        of the same size (from ``level_view``) saves shrinking the photo and finding its edges again.
        """
        size = shrunk_size(image.shape, max_side)
        scale = min(1.0, max_side / max(image.shape[:2]))
        same = view if view is not None and view.small.shape[1::-1] == size else None
        if same is not None:
            small = same.small
        else:
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
        turn, (nw, nh) = upright_transform(small.shape, angle_deg)
        if crop:
            strong = same.strong if same is not None else None
            x1, y1, x2, y2 = edge_extent(small, turn, (nw, nh), strong=strong)
            turn = np.array([[1, 0, -x1], [0, 1, -y1], [0, 0, 1]], float) @ turn
            nw, nh = x2 - x1, y2 - y1
        turned = cv2.warpAffine(small, turn[:2], (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        back = np.linalg.inv(turn)
        return [(apply(back, q) / scale).astype(np.float32) for q in self.detect(turned, max(nw, nh))]

    def upside_down_votes(self, crops: list[np.ndarray]) -> float:
        """Sum of signed direction-classifier votes: > 0 means the crops read upside down."""
        if not crops:
            return 0.0
        _, res, _ = self.cls(crops)
        return float(sum((s if lab == "180" else -s) for lab, s in res))

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float, list[float], np.ndarray]]:
        """Recognise each crop at its own size (height 48 is the model's own, 40 reads card print as well);
        crops of one height and similar widths share one batch.

        The batches are shared out between single-threaded sessions running side by side: on line crops 48 px
        high, two intra-op threads make one run only ~1.2× faster, two runs at once are ~2× faster.
        """
        batches = _width_batches(crops)
        lanes: list[list[list[int]]] = [[] for _ in self._rec_lanes] or [[]]
        load = [0] * len(lanes)

        def cost(b: list[int]) -> int:  # the recogniser's work grows with the padded batch's area
            return len(b) * int(crops[b[-1]].shape[1]) * int(crops[b[-1]].shape[0])

        for idx in sorted(batches, key=lambda b: -cost(b)):
            k = load.index(min(load))  # biggest batch first onto the least-loaded lane
            lanes[k].append(idx)
            load[k] += cost(idx)
        out: list[tuple[str, float, list[float], np.ndarray] | None] = [None] * len(crops)
        if len(self._rec_lanes) < 2:
            self._run_lane(self.rec.session, crops, lanes[0], out)
        else:
            jobs = [
                self._pool.submit(self._run_lane, sess, crops, lane, out)
                for sess, lane in zip(self._rec_lanes, lanes, strict=True)
                if lane
            ]
            for job in jobs:
                job.result()
        return [o for o in out if o is not None]

    def _run_lane(
        self,
        session: Any,
        crops: list[np.ndarray],
        lane: list[list[int]],
        out: list[tuple[str, float, list[float], np.ndarray] | None],
    ) -> None:
        for idx in lane:
            width = max(crops[i].shape[1] for i in idx)
            batch = np.zeros((len(idx), 3, crops[idx[0]].shape[0], width), np.float32)
            for k, i in enumerate(idx):
                c = crops[i].astype(np.float32).transpose(2, 0, 1)
                c *= 1 / 127.5
                c -= 1.0
                batch[k, :, :, : c.shape[2]] = c
            preds = session(batch)[0]
            for k, i in enumerate(idx):
                # Drop time steps that only saw padding.
                steps = max(1, int(np.ceil(preds.shape[1] * crops[i].shape[1] / width)))
                probs = preds[k, :steps]
                text, score, chars = self.decode(probs)
                out[i] = (text, score, chars, probs)

    def decode(self, probs: np.ndarray, allowed: str | None = None) -> tuple[str, float, list[float]]:
        """Greedy CTC decoding; with ``allowed``, only the blank and those characters compete."""
        text, scores, _ = self.decode_positions(probs, allowed)
        return text, float(np.mean(scores)) if scores else 0.0, scores

    def decode_positions(self, probs: np.ndarray, allowed: str | None = None) -> tuple[str, list[float], list[float]]:
        """Text, per-character confidence and per-character position (fraction 0–1 along the line).

        With ``allowed``, the probabilities of look-alike forms are pooled first: the model splits its belief
        between "4" and the full-width "４" (both are in its dictionary), which would halve the confidence.
        """
        symbols = self.characters
        if allowed is not None:
            groups = self._groups(allowed)
            probs = np.stack([probs[:, g].sum(axis=1) for g in groups], axis=1)
            symbols = ["", *allowed]
        best = probs.argmax(axis=1)
        conf = probs.max(axis=1)
        text: list[str] = []
        scores: list[float] = []
        first: list[int] = []
        last: list[int] = []
        prev = -1
        for t, c in enumerate(best):
            if c != 0 and c != prev:
                text.append(symbols[c])
                scores.append(float(conf[t]))
                first.append(t)
                last.append(t)
            elif c != 0 and scores:
                scores[-1] = max(scores[-1], float(conf[t]))
                last[-1] = t
            prev = int(c)
        steps = max(1, probs.shape[0])
        positions = [((a + b) / 2 + 0.5) / steps for a, b in zip(first, last, strict=True)]
        return "".join(text), scores, positions

    def _groups(self, allowed: str) -> list[list[int]]:
        """Class indices for blank and for each allowed character (with its NFKC look-alikes)."""
        if allowed not in self._group_cache:
            groups: list[list[int]] = [[0]]
            nfkc = [unicodedata.normalize("NFKC", c) for c in self.characters]
            for ch in allowed:
                groups.append([i for i, c in enumerate(nfkc) if i and c == ch])
            self._group_cache[allowed] = [g if g else [0] for g in groups]
        return self._group_cache[allowed]

    def full_pass(self, image: np.ndarray) -> tuple[list[tuple[np.ndarray, str, float]], float]:
        """The plain full-image RapidOCR call (its default settings), used as the benchmark baseline."""
        from rapidocr_onnxruntime import RapidOCR

        if not hasattr(self, "_full"):
            threads = thread_count()
            self._full = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
        t0 = time.perf_counter()
        res, _ = self._full(image)
        elapsed = time.perf_counter() - t0
        return [(np.asarray(r[0], np.float32), str(r[1]), float(r[2])) for r in (res or [])], elapsed
