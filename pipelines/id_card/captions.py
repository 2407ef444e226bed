"""Where a row's printed caption (姓名, 出生; the others see below) ends in a line crop, found from colour alone.

The detector boxes a caption and its entry as one line ("姓名唐峰"); the captions are fixed print, half of a
short line's width for the recogniser, and say nothing the row's place does not. They are printed in blue, the
entries in black: ink whose brightest channel is dark is an entry's, blue ink keeps a bright blue channel. A crop
is cut only where it starts with two glyphs' width of blue ink followed by black ink at a caption's distance (the
entry column lies 2.5 line heights right of the caption column) and more than one glyph follows; anything else is
read whole.
"""

from __future__ import annotations

import numpy as np

MIN_ENTRY = 1.6  # where an entry's first black column may lie, in crop heights from the crop's left edge
MAX_ENTRY = 3.2
MIN_BLUE_SPAN = 1.1  # two caption glyphs: a lone blue 年 (the birth row's) spans under one height
MIN_BLUE_SHARE = 0.09  # blue pixels left of the entry, as a fraction of one height-square of the crop
MARGIN = 0.3  # blank kept before the entry: the recogniser drops characters that touch a crop's edge
# A lone glyph is read without its caption far worse (壮 as 并): single-character entries (sex, most
# ethnicities) keep their caption.
MIN_REST = 2.0
# Nor are long lines cut (the first address line): cut, 2 in 200 lost their last glyph (梧州市藤 read 梧州市), and
# the caption is only a fifth of them. Names and birth dates gain the most: their captions are half the line.
MAX_WIDTH = 6.0
BLUE_OVER_RED = 35


def entry_start(crop: np.ndarray) -> int | None:
    """Column at which to cut a caption off ``crop`` (BGR, upright), or None to read it whole."""
    h, w = crop.shape[:2]
    if h < 8 or w < MIN_ENTRY * h or w > MAX_WIDTH * h:
        return None
    core = crop[h // 8 : h - h // 8]
    value = core.max(axis=2)
    lo, hi = np.percentile(value, (2, 75))
    threshold = (float(lo) + float(hi)) / 2
    dark = value < threshold
    black = dark.sum(axis=0) >= 2
    black = black[: int(MAX_ENTRY * h) + 3]
    runs = black[:-2] & black[1:-1] & black[2:]
    first = int(np.argmax(runs)) if runs.any() else None
    if first is None or not MIN_ENTRY * h <= first <= MAX_ENTRY * h:
        return None
    blue = (core[:, :first, 0].astype(np.int16) - core[:, :first, 2] > BLUE_OVER_RED) & ~dark[:, :first]
    if blue.sum() < MIN_BLUE_SHARE * h * h:
        return None
    cols = np.flatnonzero(blue.sum(axis=0) >= 2)
    if len(cols) == 0 or (cols[-1] + 1 - cols[0]) < MIN_BLUE_SPAN * h:
        return None
    cut = max(0, first - int(MARGIN * h + 0.5))
    return cut if w - cut >= MIN_REST * h else None
