"""WCAG 2.1 AA contrast of the H5 pages' colours, computed from h5.css itself: every rule that sets a text
colour, against its own background or else the one it sits on (the page's white; the camera stage's black).
AA asks 4.5:1 of normal text and 3:1 of large text; 4.5:1 is asked of every pair here (the stricter reading).
A rule that sets only a background is checked with the body's text colour on it."""

from __future__ import annotations

import re

import pytest

from service.features.wechat.h5.pages import HERE

CSS = (HERE / "static" / "h5.css").read_text()
AA = 4.5
PAGE, STAGE, BODY_TEXT = "#ffffff", "#000000", "#000000"
# Text drawn over the camera picture: the stage is black and the oval's shade darkens the video around it.
ON_STAGE = (".prompt", ".countdown")
# The stage holds only the video and those two: it has no text of its own in the body's colour.
NO_OWN_TEXT = {".stage"}


def rules(css: str) -> list[tuple[str, dict[str, str]]]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        decls = dict((k.strip(), v.strip()) for k, v in (d.split(":", 1) for d in body.split(";") if ":" in d))
        out.append((" ".join(selector.split()), decls))
    return out


def hex_colour(value: str | None) -> str | None:
    m = re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value or "")
    if m is None:
        return None
    h = m.group(1)
    return "#" + ("".join(c * 2 for c in h) if len(h) == 3 else h).lower()


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def pairs() -> list[tuple[str, str, str]]:
    out = []
    for selector, decls in rules(CSS):
        fg = hex_colour(decls.get("color"))
        bg = hex_colour(decls.get("background") or decls.get("background-color"))
        if (fg is None and bg is None) or selector in NO_OWN_TEXT:
            continue
        fg = fg or BODY_TEXT
        if bg is None:
            bg = STAGE if any(s in selector for s in ON_STAGE) else PAGE
        out.append((selector, fg, bg))
    return out


def test_the_formula_on_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey


def test_the_main_pairs_are_found() -> None:
    found = {(s, fg, bg) for s, fg, bg in pairs()}
    assert ("body", "#000000", "#ffffff") in found
    assert (".btn.primary", "#ffffff", "#003d80") in found
    assert (".feedback", "#b00000", "#ffffff") in found
    assert (".who", "#000000", "#fff4c2") in found  # background only: the body's text on it
    assert len(found) >= 10


@pytest.mark.parametrize(("selector", "fg", "bg"), pairs(), ids=[p[0] for p in pairs()])
def test_text_contrast_is_aa(selector: str, fg: str, bg: str) -> None:
    assert contrast(fg, bg) >= AA, f"{selector}: {fg} on {bg} is {contrast(fg, bg):.2f}:1"


def test_a_rule_with_a_light_grey_would_fail() -> None:
    """The check is not vacuous: the grey designers reach for first is refused."""
    assert contrast("#999999", PAGE) < AA
