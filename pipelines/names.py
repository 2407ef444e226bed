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


def normalise_name(text: str) -> str:
    """NFKC (full-width letters, compatibility ideographs), no whitespace, every middle-dot variant (and a run
    of them) as U+00B7, none at either end."""
    plain = "".join(unicodedata.normalize("NFKC", text).split())
    return _DOTS.sub(MIDDLE_DOT, plain).strip(MIDDLE_DOT)


def same_name(a: str, b: str) -> bool:
    """Whether two spellings are the same name (exact otherwise: no simplified/traditional folding)."""
    return normalise_name(a) == normalise_name(b)
