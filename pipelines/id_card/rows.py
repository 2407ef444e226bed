"""Which printed row each text line belongs to, from reading order, and the template anchors that follows.

Rows are found without any geometry prior: in the upright frame the number is the last row; the birth row is
the one with a 4-digit year; sex/ethnicity and name are the two rows above it; the rows between birth and number
are address lines. Order survives any perspective, so this holds where a first geometric guess would not.
Each row then yields correspondences for the card homography: left edges at the caption column or the entry
column (x known), and every line end at the row's top/bottom (y known).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pipelines.id_card import geometry
from pipelines.id_card.ocr import TextLine

CAPTION_CHARS = set("姓名性别民族出生住址公")
CAPTION_X = 140.0  # left edge of the caption column (template x)
CAPTION_SECOND_X = 205.0  # left edge of a caption's second character (名, 别, 生, 址)
ENTRY_X = 338.0  # left edge of the entries (name, sex, birth year, address lines)
ETHNICITY_CAPTION_X = 557.0
ETHNICITY_X = 744.0
ROW_NAME, ROW_SEX, ROW_BIRTH, ROW_ADDRESS, ROW_NUMBER = 0, 1, 2, 3, 6
# First characters of the caption that starts each row (a misread caption is not used as an anchor).
ROW_CAPTION_STARTS = {ROW_NAME: "姓名", ROW_SEX: "性别", ROW_BIRTH: "出生", ROW_ADDRESS: "住址"}
YEAR_RE = re.compile(r"(1[89]|20)\d\d")


@dataclass
class Row:
    lines: list[int]  # indices into the line list, left to right
    y: float  # centre y in the upright frame at the row's own centre

    def text(self, texts: list[str]) -> str:
        return "".join(texts[i] for i in self.lines)


def _mid_line(ln: TextLine) -> tuple[np.ndarray, np.ndarray]:
    q = ln.quad
    return (q[0] + q[3]) / 2, (q[1] + q[2]) / 2


def _y_at(ln: TextLine, x: float) -> float:
    a, b = _mid_line(ln)
    if abs(b[0] - a[0]) < 1e-6:
        return float(a[1])
    t = (x - a[0]) / (b[0] - a[0])
    return float(a[1] + t * (b[1] - a[1]))


def group_rows(lines: list[TextLine], members: list[int]) -> list[Row]:
    """Cluster lines into rows: same row when one's centre lies on the other's mid-line (± 45% height)."""
    rows: list[list[int]] = []
    for i in sorted(members, key=lambda k: lines[k].center[1]):
        cx, cy = lines[i].center
        placed = False
        for row in rows:
            ref = lines[row[0]]
            if abs(_y_at(ref, cx) - cy) < 0.45 * min(ref.height, lines[i].height):
                row.append(i)
                placed = True
                break
        if not placed:
            rows.append([i])
    out = [Row(sorted(r, key=lambda k: lines[k].x1), float(np.mean([lines[k].center[1] for k in r]))) for r in rows]
    return sorted(out, key=lambda r: r.y)


def assign_rows(lines: list[TextLine], texts: list[str], number_idx: int) -> dict[int, int]:
    """line index → template row index (0 name, 1 sex/ethnicity, 2 birth, 3–5 address, 6 number)."""
    num = lines[number_idx]
    n_left, n_right = num.x1, num.x2
    limit_x = n_left + 0.55 * (n_right - n_left)  # right of this is the portrait, not text
    above = [
        i
        for i, ln in enumerate(lines)
        if i != number_idx
        and ln.x1 < limit_x
        and ln.center[1] < _y_at(num, ln.center[0]) - 0.6 * num.height
        and ln.x2 > n_left - 1.2 * (n_right - n_left)
    ]
    rows = group_rows(lines, above)
    out: dict[int, int] = {number_idx: ROW_NUMBER}
    # Also the number's caption (公民身份号码) sits on the number row, to its left.
    for i, ln in enumerate(lines):
        on_row = abs(_y_at(num, ln.center[0]) - ln.center[1]) < 0.5 * num.height
        if i != number_idx and on_row and ln.center[0] < n_left:
            out[i] = ROW_NUMBER
    birth = _birth_row(rows, texts)
    if birth is None:
        return out
    for k, r in enumerate(rows):
        idx = None
        if k == birth:
            idx = ROW_BIRTH
        elif k == birth - 1:
            idx = ROW_SEX
        elif k == birth - 2:
            idx = ROW_NAME
        elif birth < k <= birth + 3:
            idx = ROW_ADDRESS + (k - birth - 1)
        if idx is not None:
            for i in r.lines:
                out[i] = idx
    return out


def _birth_row(rows: list[Row], texts: list[str]) -> int | None:
    """Index of the birth row, by vote: each recognisable row says where the birth row must be."""
    votes: dict[int, float] = {}
    for k, r in enumerate(rows):
        t = r.text(texts)
        if any(sum(ch.isdigit() for ch in texts[i]) >= 14 for i in r.lines):
            continue
        cues = (
            (k, 2.0 if YEAR_RE.search(t) else 0.0),
            (k, 1.0 if ("出生" in t or "月" in t or t.endswith("日")) else 0.0),
            (k + 1, 1.0 if ("性别" in t or "民族" in t or re.search(r"^(性别)?[男女]", t)) else 0.0),
            (k + 2, 1.0 if t.startswith("姓名") else 0.0),
            (k - 1, 1.0 if t.startswith("住址") else 0.0),
        )
        for idx, w in cues:
            if w:
                votes[idx] = votes.get(idx, 0.0) + w
    if not votes:
        return None
    best = max(votes, key=lambda i: votes[i])
    return best if 0 <= best < len(rows) else None


def anchors(
    lines: list[TextLine], texts: list[str], rows: dict[int, int], number_idx: int
) -> tuple[list[tuple[tuple[float, float], tuple[float, float]]], list[tuple[tuple[float, float], float]]]:
    """(image point, template point) pairs and (image point, template y) constraints from row membership."""
    points: list[tuple[tuple[float, float], tuple[float, float]]] = []
    y_only: list[tuple[tuple[float, float], float]] = []

    def pt(p: np.ndarray) -> tuple[float, float]:
        return float(p[0]), float(p[1])

    q = lines[number_idx].quad
    digits = sum(ch.isdigit() or ch in "Xx" for ch in texts[number_idx])
    # The box's right end is only where the 18th character ends when all 18 were found.
    corners = (0, 1, 2, 3) if digits == 18 else (0, 3)
    for k in corners:
        points.append((pt(q[k]), (float(geometry.NUMBER_BOX[k][0]), float(geometry.NUMBER_BOX[k][1]))))
    by_row: dict[int, list[int]] = {}
    for i, r in rows.items():
        if i != number_idx:
            by_row.setdefault(r, []).append(i)
    typical = float(np.median([lines[i].height for i in rows]))
    for r, members in by_row.items():
        top, bottom = geometry.ROW_EDGES[r]
        members.sort(key=lambda k: lines[k].x1)
        for j, i in enumerate(members):
            q = lines[i].quad
            if lines[i].height < 0.6 * typical:
                continue  # a stray glyph's box: its top and bottom are not the row's
            y_only += [(pt(q[0]), top), (pt(q[1]), top), (pt(q[2]), bottom), (pt(q[3]), bottom)]
            t = texts[i]
            left_x = None
            if lines[i].entry_from > 0:
                # A caption was cut off unread: the box starts at the caption column, whatever the entry reads.
                # Not on the sex/ethnicity row (性别 or 民族?), and a birth row's entry must start with its year.
                if j == 0 and r in (ROW_NAME, ROW_BIRTH, ROW_ADDRESS) and (r != ROW_BIRTH or t[:1].isdigit()):
                    left_x = CAPTION_X
            elif r == ROW_NUMBER:
                left_x = geometry.CAPTION_LEFT_CORNERS["公民身份号码"][0][0] if t.startswith("公民") else None
            elif r == ROW_SEX and t and t[0] in "民族":
                left_x = ETHNICITY_CAPTION_X  # wherever it sits in the row: 性别 may be missing
            elif j == 0 and _starts_with_caption(t, ROW_CAPTION_STARTS.get(r, "")):
                # The box may start at the caption's second character (the first one lost).
                cap = ROW_CAPTION_STARTS[r]
                left_x = CAPTION_X if t[:1] == cap[0] or t[1:2] == cap[1] else CAPTION_SECOND_X
            elif j == 0 and r != ROW_SEX:
                left_x = ENTRY_X if t[:1] not in CAPTION_CHARS else None
            elif j == 0 and t[:1] in "男女":
                left_x = ENTRY_X
            if left_x is not None:
                points += [(pt(q[0]), (left_x, float(top))), (pt(q[3]), (left_x, float(bottom)))]
    return points, y_only


def _starts_with_caption(text: str, caption: str) -> bool:
    """The line starts with the row's caption, or with its second character: either one alone (the other lost)
    or behind a misread first one (佳址 for 住址; taken for an entry, it would pull the card 200 px sideways)."""
    return bool(caption) and bool(text) and (text[0] in caption or text[1:2] == caption[1])
