"""Fixed regions of the card template and reading them from the photo through the card homography."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.id_card.parse import ETHNICITY_NAMES
from pipelines.id_card.quality import sharpness

BIRTH_CHARS = "0123456789年月日出生"
# The 56 ethnic groups are a closed list: reading their region is constrained to the characters they use.
ETHNICITY_CHARS = "".join(sorted(set("".join(ETHNICITY_NAMES))))


# (name, template box, where the entry starts, character width, allowed characters) of each field region.
# Boxes are as tall as the detector's boxes of those rows (geometry.ROW_EDGES): the recogniser needs the text to
# fill about three quarters of the crop height, and returns nothing for a lone character in a taller crop.
FIELD_REGIONS: tuple[tuple[str, tuple[float, float, float, float], float, float, str | None], ...] = (
    ("name", (326, 186, 1200, 286), 338, 80, None),
    ("sex", (326, 340, 530, 420), 338, 70, "男女"),
    ("ethnicity", (734, 340, 1060, 420), 744, 70, ETHNICITY_CHARS),
    ("birth", (326, 478, 1120, 553), 338, 70, BIRTH_CHARS),
    ("address0", (326, 618, 1200, 696), 338, 70, None),
    ("address1", (326, 718, 1200, 796), 338, 70, None),
    ("address2", (326, 818, 1200, 896), 338, 70, None),
)
NUMBER_REGION = (640.0, 962.0, 1760.0, 1064.0)
REC_SCALE_FOR = {name: 48.0 / (box[3] - box[1]) for name, box, *_ in FIELD_REGIONS}


def too_blurry(image: np.ndarray) -> bool:
    """Nothing readable and hardly any edges at a 640-px scale: blur, not an empty scene, is the likely cause."""
    s = min(1.0, 640 / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else image
    return sharpness(small) < 0.08


def has_ink(region: np.ndarray) -> bool:
    """Dark print on the light card: some pixels well below the region's median brightness."""
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    return float((gray < np.median(gray) - 60).mean()) > 0.01


def warp_region(
    image: np.ndarray, h_in: np.ndarray, box: tuple[float, float, float, float], scale: float
) -> np.ndarray:
    """Rectify a template-coordinate box of the card from the input image at ``scale`` template px."""
    x1, y1, x2, y2 = box
    out_w, out_h = max(8, int((x2 - x1) * scale)), max(8, int((y2 - y1) * scale))
    to_out = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale], [0, 0, 1]], float)
    m = to_out @ np.linalg.inv(h_in)
    warped: np.ndarray = cv2.warpPerspective(
        image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)
    )
    return warped


def trim_to_ink(region: np.ndarray, skip: int = 6) -> np.ndarray | None:
    """The columns of a text region that hold dark print (plus a small margin), or None without any."""
    gray = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY).astype(np.float32)
    cols = (gray < np.median(gray) - 40).sum(axis=0)
    cols[:skip] = 0  # a sliver of the caption at the left edge
    ink = np.flatnonzero(cols > 2)
    if ink.size == 0:
        return None
    x1, x2 = max(0, int(ink[0]) - 4), min(region.shape[1], int(ink[-1]) + 7)
    return np.ascontiguousarray(region[:, x1:x2]) if x2 - x1 >= 8 else None
