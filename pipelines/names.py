"""Personal names as printed on an ID card and typed on a roster or a phone: one form to compare them in.

Ethnic-minority names carry a middle dot (阿依古丽·买买提). Cards print U+00B7; phones, spreadsheets and the
text recogniser give any of several look-alikes (• ・ ‧ ∙ ･ ．), often with spaces around it. Rare characters
(生僻字) may lie outside the BMP (𠮷 U+20BB7). A module of its own, without models, so that the service loads it.
"""

from __future__ import annotations

import re
import unicodedata

# The one middle dot of names, and what it is typed or read as.
MIDDLE_DOT = "·"
DOT_VARIANTS = "·•・‧∙⋅⸱･﹒．.ㆍ"
# Han characters of every CJK block, the BMP's and the supplementary planes' (Extensions B–H), and 〇: a regular
# expression class body.
HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af"
_DOTS = re.compile("[" + re.escape(DOT_VARIANTS) + "]+")
# Whitespace as Python's str.split()/str.strip() see it (ASCII controls, U+0085, the no-break, en/em, thin,
# ideographic and other spaces, the line and paragraph separators): none lies above U+3000.
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
# What a name's search key leaves out (every middle-dot look-alike and every whitespace character): the characters
# SQL takes out of a stored name with replace() (service/features/console/roster_search.py), no other list.
SEARCH_LEFT_OUT = DOT_VARIANTS + WHITESPACE
_LEFT_OUT = str.maketrans("", "", SEARCH_LEFT_OUT)
_NO_SPACE = str.maketrans("", "", WHITESPACE)


def normalise_name(text: str) -> str:
    """NFKC (full-width letters, compatibility ideographs), no whitespace, every middle-dot variant (and a run
    of them) as U+00B7, none at either end."""
    plain = unicodedata.normalize("NFKC", text).translate(_NO_SPACE)
    return _DOTS.sub(MIDDLE_DOT, plain).strip(MIDDLE_DOT)


def stored_name(text: str) -> str:
    """A roster cell's name as the import stores it: NFKC (full-width letters and digits as the letters they are,
    a compatibility ideograph as its character), no whitespace at either end; the dots and the spaces inside kept
    as typed, for the pages and the payment exports."""
    return unicodedata.normalize("NFKC", text).strip(WHITESPACE)


def search_key(text: str) -> str:
    """A name as the console's search compares it: `normalise_name`'s form without the middle dot."""
    return unicodedata.normalize("NFKC", text).translate(_LEFT_OUT)


def plain_key(text: str) -> str:
    """`search_key` without NFKC: what SQL makes of a stored name (no NFKC there), so that a name stored before the
    import applied NFKC is found pasted as stored."""
    return text.translate(_LEFT_OUT)


def same_name(a: str, b: str) -> bool:
    """Whether two spellings are the same name (exact otherwise: no simplified/traditional folding)."""
    return normalise_name(a) == normalise_name(b)
