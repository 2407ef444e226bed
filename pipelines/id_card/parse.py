"""Field extraction from recognised characters placed on the card template.

Each recognised character carries its position, mapped into template coordinates by the card homography, so a
field is simply "the characters inside its band of the layout": captions (left column, x < 300) drop out by
position even when misread, and text boxes the detector merged across fields are split where they belong.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from pipelines.id_card import layout
from pipelines.names import DOT_VARIANTS, HAN, normalise_name

# Vertical bands (template y of character centres) and the left edge of the entries.
NAME_BAND = (150, 308)
ROW2_BAND = (308, 448)
BIRTH_BAND = (448, 586)
ADDRESS_BAND = (586, 940)
ENTRY_X = 300
ETHNICITY_CAPTION_X = (520, 722)
TEXT_RIGHT = layout.PORTRAIT_BOX[0] - 10
ADDRESS_FIRST_LINE_Y = 657.0

ETHNICITY_NAMES = (
    "汉",
    "蒙古",
    "回",
    "藏",
    "维吾尔",
    "苗",
    "彝",
    "壮",
    "布依",
    "朝鲜",
    "满",
    "侗",
    "瑶",
    "白",
    "土家",
    "哈尼",
    "哈萨克",
    "傣",
    "黎",
    "傈僳",
    "佤",
    "畲",
    "高山",
    "拉祜",
    "水",
    "东乡",
    "纳西",
    "景颇",
    "柯尔克孜",
    "土",
    "达斡尔",
    "仫佬",
    "羌",
    "布朗",
    "撒拉",
    "毛南",
    "仡佬",
    "锡伯",
    "阿昌",
    "普米",
    "塔吉克",
    "怒",
    "乌孜别克",
    "俄罗斯",
    "鄂温克",
    "德昂",
    "保安",
    "裕固",
    "京",
    "塔塔尔",
    "独龙",
    "鄂伦春",
    "赫哲",
    "门巴",
    "珞巴",
    "基诺",
    "穿青人",
)


@dataclass(frozen=True)
class Char:
    ch: str
    score: float
    x: float  # template coordinates of the character centre
    y: float
    src: int = -1  # which text line (or re-read region) it came from
    inset: float = 1e9  # how far inside its own line's ends it sits (template px); < 0: in the padding


def normalize(text: str) -> str:
    """Full-width → ASCII (NFKC), no spaces; the OCR model sometimes emits full-width digits."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


# Caption characters and their common misreadings; CTC positions are ±half a character, so a caption character
# just left of the entry column is dropped by what it is, not only by where it is.
CAPTION_LIKE = {
    NAME_BAND: set("姓名"),
    ROW2_BAND: set("性别"),
    BIRTH_BAND: set("出生"),
    (ADDRESS_BAND[0], ADDRESS_FIRST_LINE_Y + 50): set("住址佳业往主"),
}
ENTRY_START = 338.0
ADDRESS_CAPTION_MISREADS = set("住址止上土佳业往主")


def in_band(c: Char, band: tuple[float, float], x_from: float = ENTRY_X, x_to: float = TEXT_RIGHT) -> bool:
    if x_from == ENTRY_X and c.x < ENTRY_START + 40:
        for (y1, y2), captions in CAPTION_LIKE.items():
            if y1 <= c.y < y2 and c.ch in captions:
                return False
    return band[0] <= c.y < band[1] and x_from <= c.x < x_to


def _dedupe(chars: list[Char]) -> list[Char]:
    """Overlapping text boxes read the same glyph twice: keep one character per ~half a glyph of x."""
    out: list[Char] = []
    for c in sorted(chars, key=lambda c: c.x):
        if out and c.src != out[-1].src and abs(c.x - out[-1].x) < 40:
            # Two lines claim the same spot: believe the one that has it well inside its box.
            if (c.inset, c.score) > (out[-1].inset, out[-1].score):
                out[-1] = c
            continue
        out.append(c)
    return out


def _join(chars: list[Char]) -> tuple[str, float]:
    chars = _dedupe(chars)
    text = normalize("".join(c.ch for c in chars))
    return text, min((c.score for c in chars), default=0.0)


def name_field(chars: list[Char]) -> tuple[str | None, float]:
    text, conf = _join([c for c in chars if in_band(c, NAME_BAND)])
    # Every middle-dot look-alike as the card's ·, then only Han characters (any plane: 𠮷) and that dot.
    text = normalise_name(re.sub(f"[^{HAN}{re.escape(DOT_VARIANTS)}]", "", text))
    return (text or None), conf


def sex_field(chars: list[Char]) -> tuple[str | None, float]:
    cands = [c for c in chars if in_band(c, ROW2_BAND, ENTRY_X, ETHNICITY_CAPTION_X[0]) and c.ch in "男女"]
    if not cands:
        return None, 0.0
    best = max(cands, key=lambda c: c.score)
    return best.ch, best.score


def ethnicity_field(chars: list[Char]) -> tuple[str | None, float]:
    text, conf = _join([c for c in chars if in_band(c, ROW2_BAND, ETHNICITY_CAPTION_X[1], TEXT_RIGHT)])
    text = re.sub(f"[^{HAN}]", "", text)
    if text.startswith("族") and len(text) > 1:
        text = text[1:]  # the caption's last character, when the homography puts it just past the split
    if text.endswith("族") and text[:-1] in ETHNICITY_NAMES:
        text = text[:-1]
    return (text or None), conf


def birth_field(chars: list[Char]) -> tuple[dt.date | None, float, str]:
    """The printed birth date: three digit groups (year, month, day) separated by the printed 年 月 日."""
    text, conf = _join([c for c in chars if in_band(c, BIRTH_BAND)])
    groups = re.findall(r"\d+", text)
    if len(groups) >= 3 and len(groups[0]) == 4:
        try:
            return dt.date(int(groups[0]), int(groups[1]), int(groups[2])), conf, text
        except ValueError:
            pass
    m = re.search(r"(\d{4})(\d{1,2})(\d{2})$", "".join(groups))
    if m and len(groups) < 3:
        try:
            return dt.date(int(m[1]), int(m[2]), int(m[3])), conf * 0.5, text
        except ValueError:
            pass
    return None, 0.0, text


def address_field(chars: list[Char]) -> tuple[str | None, float]:
    cands = [c for c in chars if in_band(c, ADDRESS_BAND)]
    if not cands:
        return None, 0.0
    lines: dict[int, list[Char]] = {}
    for c in cands:
        lines.setdefault(round((c.y - ADDRESS_FIRST_LINE_Y) / layout.ADDRESS_LINE_STEP), []).append(c)
    first = sorted(lines[min(lines)], key=lambda c: c.x)
    # 址 misread as 止/上/土 just left of the entry: a caption, whatever it reads as (上海 starts further right).
    if len(first) > 1 and first[0].ch in ADDRESS_CAPTION_MISREADS and first[0].x < ENTRY_START + 14:
        lines[min(lines)] = first[1:]
    parts = [_join(lines[k]) for k in sorted(lines)]
    text = re.sub(f"[^{HAN}" + r"0-9A-Za-z\-·()#]", "", "".join(p[0] for p in parts))
    return (text or None), min(p[1] for p in parts)


# -- emblem side: read by text, the layout there is simple -------------------------------------------------

# A date as printed (2005.07.14), or with its dots lost (20050714); then a dash of any kind between the two
# dates (-, —, –, ~, 至, or the look-alike 一 a recogniser may give for the printed dash).
_DATE = r"(\d{4})(?:[.\-/·](\d{1,2})[.\-/·](\d{1,2})|(\d{2})(\d{2}))"
VALIDITY_RE = re.compile(_DATE + r"[-—–‒―−~至一_]+(?:" + _DATE + r"|(长期))")


def _date(groups: tuple[str | None, ...]) -> dt.date:
    """The date of one _DATE match's five groups (year, then month and day in one of two places)."""
    year, month, day, month2, day2 = groups
    return dt.date(int(year or 0), int(month or month2 or 0), int(day or day2 or 0))


def _validity(text: str) -> tuple[dt.date | None, dt.date | None, bool]:
    """(valid from, valid until, long-term) of a 有效期限 line; nothing when either end is not a calendar date."""
    m = VALIDITY_RE.search(text.replace("有效期限", ""))
    if not m:
        return None, None, False
    try:
        start = _date(m.groups()[0:5])
        until = None if m[11] else _date(m.groups()[5:10])
    except ValueError:
        return None, None, False
    return start, until, until is None


def emblem_fields(lines: list[str]) -> tuple[str | None, dt.date | None, dt.date | None, bool]:
    """(issuing authority, valid from, valid until, long-term) from the emblem side's text lines."""
    authority: str | None = None
    start = until = None
    long_term = False
    for i, raw in enumerate(lines):
        text = normalize(raw)
        if "签发机关" in text or text.startswith("签发"):
            rest = text.split("机关", 1)[-1] if "机关" in text else text[2:]
            if not rest and i + 1 < len(lines):
                rest = normalize(lines[i + 1])
            authority = rest or authority
        found = _validity(text)
        if found[0] is not None:
            start, until, long_term = found
    return authority, start, until, long_term
