"""Shared steps of the line-reading tests: the reader's own upright, ordered boxes, and glare over the number."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.id_card import IdCardReader
from pipelines.id_card import geometry as G
from pipelines.id_card import lines as LN
from pipelines.id_card.result import IdCardResult


def ordered_lines(reader: IdCardReader, image: np.ndarray) -> tuple[np.ndarray, LN.Ordered]:
    """(input → upright transform, the lines as ``read_lines`` takes them) for a photo, orientation settled."""
    quads = reader._detect(image)
    angle = G.text_direction(quads)
    assert angle is not None
    res = IdCardResult()
    up, lines = reader._orient_and_read(image, quads, angle, res)  # settles 0°/180°
    assert res.rotation_deg is not None
    up, _ = G.upright_transform(image.shape, res.rotation_deg)
    return up, [LN.ordered_in(up, G.apply(np.linalg.inv(up), ln.quad)) for ln in lines]


def glare_over_number_half(image: np.ndarray, up: np.ndarray, ordered: LN.Ordered, number: int) -> np.ndarray:
    """A copy of the photo with the number's right half painted over, as glare would: ≤ a dozen digits left."""
    dst = ordered[number][1].copy()
    dst[[0, 3], 0] = (dst[0, 0] + dst[1, 0]) / 2
    out = image.copy()
    cv2.fillConvexPoly(out, G.apply(np.linalg.inv(up), dst).astype(np.int32), (235, 235, 235))
    return out
