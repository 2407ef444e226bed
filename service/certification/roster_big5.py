"""A GB18030-read roster that is a Big5 file (Taiwan or Hong Kong software, an office PC with a traditional-Chinese
locale), told in a short file too (docs/security.md Part AK).

Big5 text decodes as GB18030 without an error. Most Big5 names then hold kana, Greek, Cyrillic or private-use
characters, and `roster_file._checked_names` refuses the file for them; but a file of one or two names may show
that sign in one name only, or in none (張國榮 reads as 眎瓣篴), and its other names were imported garbled. So each
name is read both ways: the file is refused as Big5 when every name read as Big5 is made of the characters names
are written in (`name_characters`: 張國榮), and the GB18030 reading shows at least two characters no name is written
in (`odd_characters`: 眎, 篴, private-use ones). One such character alone is a GB18030 roster's own rare character or
造字 (王玥, 王 and a user-defined character), and its row is judged as before; measured on generated names, a 造字
or a rare character in a one- or two-name GB18030 file is never refused so (tests/service/test_roster_big5.py).

The characters outside GB2312 that mainland given names are written in (玥, 珺, 琇: the gem radical's; 祎, 芃 …,
`NAME_RARE`) are no sign of Big5 either: before, two of them in a file of one to three names refused it about one
time in five to one in thirteen (the review of new surfaces, F4), as Chinese Excel's CSV of new retirees.
"""

from __future__ import annotations

import re
import unicodedata

from pipelines.names import DOT_VARIANTS, HAN, fold, in_gb2312

_HAN = re.compile(f"[{HAN}]")
# Windows' Big5 (code page 950): what a traditional-Chinese Excel writes; Python's big5 lacks some of its characters.
BIG5 = "cp950"
# At least this many characters of the GB18030 reading no name is written in: one is a rare character or a 造字.
ODD_ENOUGH = 2
# GBK's ideographs outside GB2312 that given names are written in: the gem radical's (玉/王: 玥, 珺, 琇, 玙 …, the
# block up to 瓦) and these. GBK holds them where Big5's bytes read as GB18030 give ideographs no name uses (眎, 篴),
# so they are told apart by the character; one used by the names of a roster is never a sign of Big5.
_GEM = range(0x738B, 0x74E6)
NAME_RARE = frozenset("祎禕祐禛禤芃甡畇竑锳翾镕頔赟钖翀絜")


def private_character(ch: str) -> bool:
    """A private-use code point (U+E000–U+F8FF, planes 15 and 16): a 造字 (roster_file.private_use)."""
    return 0xE000 <= ord(ch) <= 0xF8FF or ord(ch) >= 0xF0000


def _rare_name_han(ch: str) -> bool:
    """A Han character outside GB2312 that given names are written in (NAME_RARE, the gem radical's)."""
    return ord(ch) in _GEM or ch in NAME_RARE


def _name_han(ch: str) -> bool:
    """A Han character names are written in: a GB2312 one, or a traditional or variant form of one (張, 國)."""
    return in_gb2312(fold(ch))


def name_characters(name: str) -> bool:
    """Whether every character of a name is one names are written in: ASCII, a name's dot, a space, a Han character
    of GB2312 or a traditional or variant form of one (no symbol, no private-use character)."""
    for ch in name:
        if _HAN.match(ch):
            if not _name_han(ch):
                return False
        elif not (ch.isascii() or ch in DOT_VARIANTS or ch.isspace()):
            return False
    return True


def odd_characters(name: str) -> int:
    """How many characters of a name no name is written in: private-use ones, Han ones that are neither GB2312, a
    traditional or variant form of one, nor a rarer one given names use (眎, 篴; not 玥, 祎), and symbols (㏄, ﹙).
    A foreign name's accented letters are not."""
    odd = 0
    for ch in name:
        if private_character(ch):
            odd += 1
        elif _HAN.match(ch):
            odd += not (_name_han(ch) or _rare_name_han(ch))
        elif not ch.isascii() and ch not in DOT_VARIANTS and unicodedata.category(ch)[0] in "SP":
            odd += 1
    return odd


def as_big5(name: str) -> str | None:
    """A GB18030-read name as Big5 would read its bytes; None: they are not Big5."""
    try:
        return name.encode("gb18030").decode(BIG5)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


class Big5Reading:
    """Whether a GB18030-read file reads better as Big5, told from its names in the file's order (`note`), after the
    last (`refused_line`)."""

    def __init__(self) -> None:
        self.possible = True
        self.odd = 0
        self.first_odd = 0

    def note(self, line: int, name: str) -> None:
        if not self.possible:  # one name that is no Big5 name ends it: a GB18030 file reads so at once
            return
        big5 = as_big5(name)
        if big5 is None or not name_characters(big5):
            self.possible = False
            return
        odd = odd_characters(name)
        if odd:
            self.odd, self.first_odd = self.odd + odd, self.first_odd or line

    def refused_line(self) -> int:
        """The first line whose GB18030 reading shows a character no name holds, when the file is Big5; 0: it is not."""
        return self.first_odd if self.possible and self.odd >= ODD_ENOUGH else 0
