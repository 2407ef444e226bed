"""The printed certificate's name line for rare characters the font lacks (Extension B and beyond: 𪚥, 𠀀).

Only Noto Sans CJK is installed, and it has no glyph for them: the 姓名 line printed its empty .notdef box (王□), a
name that is not the person's for a bank or an employer to compare with the ID card. Now such a character is printed
as 〓, the typesetter's mark for a missing character, with a note under the name that the ID card decides."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image, ImageChops

from service.certification.certificates import (
    MISSING_GLYPH_NOTE,
    CertificateClaims,
    _font,
    printed_lines,
    render_png,
)

CLAIMS = CertificateClaims(1, "1101**********0012", dt.date(2026, 5, 1), dt.date(2027, 4, 30))
URL = "https://cert.example/api/v1/certificates/verify?code=abc"
RARE = ["王\U0002a6a5", "王\U00020000", "\U0002a6a5\U00020000", "李\U00030000明"]  # 王𪚥, 王𠀀, 𪚥𠀀, Ext G


def notdef(font: object, ch: str) -> bool:
    """Whether `ch` rasterises as the font's .notdef box: the image of a code point no font has."""
    box, mask = font.getmask("\U0010fffd"), font.getmask(ch)  # type: ignore[attr-defined]
    return bool(mask.size == box.size and bytes(mask) == bytes(box))


def name_row(name: str) -> Image.Image:
    """The 姓名 line of the rendered certificate (its second line: 30 + 44 px down, 44 px high)."""
    png = render_png(name, CLAIMS, URL, "本人认证")
    return Image.open(io.BytesIO(png)).convert("L").crop((0, 74, 720, 118))


def test_the_font_lacks_the_rare_characters_of_these_names() -> None:
    # What the fix is for: were a font with these glyphs installed, the names would print as they are.
    font = _font(28)
    assert all(any(notdef(font, ch) for ch in name) for name in RARE)


@pytest.mark.parametrize("name", RARE)
def test_no_character_of_the_printed_lines_is_the_empty_box(name: str) -> None:
    font = _font(28)
    lines = printed_lines(name, CLAIMS, URL, "本人认证", font)
    assert not [ch for line in lines for ch in line if notdef(font, ch)], lines
    assert "〓" in lines[1] and lines[2] == MISSING_GLYPH_NOTE, lines


def test_wang_with_a_rare_character_is_printed_with_the_marker() -> None:
    # The pixels of the certificate's name row: 王〓, not 王 and the box.
    assert ImageChops.difference(name_row("王\U0002a6a5"), name_row("王〓")).getbbox() is None
    assert ImageChops.difference(name_row("王\U0002a6a5"), name_row("王\U0010fffd")).getbbox() is None  # both 〓
    lines = printed_lines("王\U0002a6a5", CLAIMS, URL, "本人认证", _font(28))
    assert lines[1].startswith("姓名: 王〓 ") and "以身份证为准" in lines[2]


@pytest.mark.parametrize("name", ["王\U00020bb7", "张秀英", "阿依古丽·买买提", "王䶮"])  # 𠮷: Ext B the font has
def test_a_name_the_font_can_print_is_printed_as_it_is(name: str) -> None:
    lines = printed_lines(name, CLAIMS, URL, "本人认证", _font(28))
    assert lines[1].startswith(f"姓名: {name} ") and MISSING_GLYPH_NOTE not in lines
