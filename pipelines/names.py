"""Personal names as printed on an ID card and typed on a roster or a phone: one form to compare them in.

Ethnic-minority names carry a middle dot (阿依古丽·买买提). Cards print U+00B7; phones, spreadsheets and the
text recogniser give any of several look-alikes (• ・ ‧ ∙ ･ ．), often with spaces around it; old records write it
as a (full-width) space or leave it out: names are compared without it. Rare characters
(生僻字) may lie outside the BMP (𠮷 U+20BB7). A module of its own, without models, so that the service loads it.

Old benefit-system rosters and records typed from old documents write names in traditional or variant characters
(陳秀英, 李峯) where the resident ID card prints the simplified form (陈秀英, 李峰), or the other way round. Names are
compared folded to simplified (`compare_key`, data/name_fold.tsv from OpenCC's dictionaries, see data/name_fold.md);
no character of GB2312 (the mainland simplified set) is folded, nor the 2013 standard's name variants (喆, 堃, 甯…),
except the second simplified form of a traditional character that stands for it alone, onto its first (锺 → 钟,
馀 → 余: 鍾 and 餘 each became both); characters of that standard's list beyond GB2312 were not otherwise checked.
What is stored and shown is never folded.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from pathlib import Path

from pipelines.tables import read_pairs

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
# Spellings of one name the console's search looks for at most (`spellings`): each adds a few LIKEs to its query.
MAX_SPELLINGS = 16
# In a spelling beyond MAX_SPELLINGS: a character of several forms left open (any one character, a LIKE's "_"), the
# search then telling the names found by `begins_alike`. A noncharacter: never typed, stored or left out.
ANY_FORM = "\uffff"
# Traditional or variant character → simplified (scripts/gen_name_fold.py; source, commit, licence: name_fold.md).
FOLD_DATA = Path(__file__).parent / "data" / "name_fold.tsv"


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


@functools.cache
def fold_table() -> dict[str, str]:
    """Traditional or variant character → its simplified form (陳 → 陈, 峯 → 峰, 锺 → 钟): single characters only; no
    key is a character of GB2312 but a traditional character's second simplified form (锺, 馀), and none is any
    key's value, so folding twice changes nothing."""
    return read_pairs(FOLD_DATA)


@functools.cache
def _fold() -> dict[int, str]:
    return str.maketrans(fold_table())


def fold(text: str) -> str:
    """`text` with every traditional or variant character of the table in its simplified form, the rest as is."""
    return text.translate(_fold())


@functools.cache
def _forms() -> dict[str, tuple[str, ...]]:
    """Simplified character → itself and its traditional and variant forms (陈 → 陈 陳), the table reversed."""
    forms: dict[str, list[str]] = {}
    for key, value in sorted(fold_table().items()):
        forms.setdefault(value, [value]).append(key)
    return {simplified: tuple(chars) for simplified, chars in forms.items()}


def spellings(key: str) -> tuple[str, ...]:
    """The ways a roster may write the name whose key is `key` (a search key: compared as stored, SQL has no
    table): each character simplified or in one of its traditional or variant forms, the simplified spelling
    first. Every mix while they are at most MAX_SPELLINGS; beyond, every mix of the longest beginning that has at
    most so many, each followed by the rest with every character of several forms left open (ANY_FORM): the
    search tells those names by `begins_alike` (a long name written in both forms at once was found before by a
    shorter beginning only, not even pasted whole)."""
    choices = [_forms().get(c, (c,)) for c in fold(key)]
    cut, count = 0, 1
    while cut < len(choices) and count * len(choices[cut]) <= MAX_SPELLINGS:
        count *= len(choices[cut])
        cut += 1
    rest = "".join(c[0] if len(c) == 1 else ANY_FORM for c in choices[cut:])
    return tuple("".join(mix) + rest for mix in itertools.product(*choices[:cut]))


def begins_alike(name: str, typed: str) -> bool:
    """Whether the name `name` begins with the name `typed`, both as the search compares them (`search_key`, or as
    stored: `plain_key`) and folded to simplified: what the search's SQL left open (ANY_FORM) told in Python."""
    return any(fold(key(name)).startswith(fold(key(typed))) for key in (search_key, plain_key))


def compare_key(text: str) -> str:
    """A name as two spellings of it are compared: the console search's form (`search_key`: NFKC, no middle dot nor
    whitespace, so a dot written as a full-width space or left out, as old records do, is the card's ·),
    traditional and variant characters folded to simplified. A key, never stored or shown."""
    return fold(search_key(text))


@functools.cache
def _fold_to_card() -> dict[int, str]:
    """`fold` without the second simplified forms (锺 → 钟, 钜 → 巨: the table's keys of GB2312)."""
    return str.maketrans({k: v for k, v in fold_table().items() if not in_gb2312(k)})


def in_gb2312(char: str) -> bool:
    """Whether GB2312, the mainland simplified set (the characters of ordinary names), encodes the character."""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def same_card_name(a: str, b: str) -> bool:
    """Whether two spellings are the same name as a resident ID card prints it: as `same_name`, but two simplified
    characters are two names (钟 and 锺, 巨 and 钜: the card prints one of them). What a record's change of ID
    number reports as its name kept (service/certification/roster_identity.py)."""
    return search_key(a).translate(_fold_to_card()) == search_key(b).translate(_fold_to_card())


def same_name(a: str, b: str) -> bool:
    """Whether two spellings are the same name: a middle-dot look-alike, or a space or nothing for it, spaces,
    full-width letters, traditional or variant characters (陳秀英 and 陈秀英), and the two simplified forms of one
    traditional character (钟 and 锺, both 鍾's), are the same; otherwise exact (陈 and 程, 曲 and 麴 differ)."""
    return compare_key(a) == compare_key(b)
