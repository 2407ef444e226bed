"""Row anchors survive lines the recogniser returned empty (a blank box on an address continuation row)."""

from __future__ import annotations

import numpy as np

from pipelines.id_card import rows as R
from pipelines.id_card.ocr import TextLine


def _line(text: str, x1: float, y1: float, x2: float, y2: float) -> TextLine:
    quad = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
    return TextLine(text, 0.9, [0.9] * len(text), quad, np.zeros((1, 1), np.float32))


def test_empty_text_on_a_row_without_caption_gives_anchors_not_a_crash() -> None:
    lines = [
        _line("住址北京市东城区", 100, 500, 600, 540),
        _line("", 300, 560, 500, 600),  # second address line, nothing recognised
        _line("110101194001011234", 300, 800, 900, 840),
    ]
    texts = [ln.text for ln in lines]
    rows = {0: R.ROW_ADDRESS, 1: R.ROW_ADDRESS + 1, 2: R.ROW_NUMBER}
    points, y_only = R.anchors(lines, texts, rows, number_idx=2)
    # The number line's corners and the address caption's left edge are anchors; the address line and the
    # blank line each give their top and bottom y constraints.
    assert len(points) >= 5
    assert len(y_only) == 8


def _left_anchor(text: str) -> float | None:
    """Template x the line's left edge is anchored to, on the first address row."""
    lines = [_line(text, 100, 500, 600, 540), _line("110101194001011234", 300, 800, 900, 840)]
    points, _ = R.anchors(lines, [ln.text for ln in lines], {0: R.ROW_ADDRESS, 1: R.ROW_NUMBER}, number_idx=1)
    left = [card[0] for img, card in points if img == (100.0, 500.0)]
    return left[0] if left else None


def test_a_misread_caption_still_anchors_the_caption_column() -> None:
    assert _left_anchor("住址北京市东城区") == R.CAPTION_X
    assert _left_anchor("佳址北京市东城区") == R.CAPTION_X  # 住 misread: the line still starts at the caption
    assert _left_anchor("址北京市东城区") == R.CAPTION_SECOND_X  # 住 lost
    assert _left_anchor("北京市东城区") == R.ENTRY_X  # the caption's box is a separate line
