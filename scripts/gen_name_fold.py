"""Regenerate pipelines/data/name_fold.tsv (a traditional or variant character → its simplified form) from OpenCC.

    python scripts/gen_name_fold.py TSCharacters.txt STCharacters.txt

Reads OpenCC's character dictionaries (github.com/BYVoid/OpenCC, data/dictionary/, Apache-2.0) from the paths
given (fetched by hand at the commit pinned in pipelines/data/name_fold.md; never downloaded here) and writes one
`traditional<TAB>simplified` line per single character. When OpenCC gives several simplified candidates, the
first that GBK encodes is taken (the set the card and roster systems wrote names in for decades: 勣 → 绩, not the
extension character 𪟝), else the first. A character that is itself written in simplified Chinese is never a key,
so that folding never makes two simplified names equal: one listed among its own candidates (乾 干 乾, 於 于 於),
one that is a simplified character with a traditional form (a key of STCharacters.txt), one that is another
character's simplified form, or one in GB2312, the mainland simplified set (麴, a surname apart from 曲; 榘 of
韩复榘; 後, 摺, 菸…). One exception, the other candidates of a key in the table that stand for that traditional
character alone (STCharacters gives it as their only traditional form): two simplified forms of one character,
one name, folded onto the one taken (锺 → 钟 and 鍾 → 钟; 馀 → 余; 缐 → 线; 𪟝 → 绩). A candidate that also stands
for another character (扬 for 揚, 仇 for itself) stays apart.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from pipelines.names import in_gb2312  # the one home of the rule: the table and the names read it alike

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "name_fold.tsv"


def read_dictionary(path: Path) -> dict[str, list[str]]:
    """OpenCC's `key<TAB>value value…` lines (comments and blank lines skipped)."""
    entries: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, values = line.partition("\t")
        entries[key] = values.split()
    return entries


def in_gbk(char: str) -> bool:
    """Whether `char` is in GBK (two bytes of GB18030): a card or roster system of the GBK era could write it."""
    try:
        char.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def chosen(values: list[str]) -> str:
    """The simplified form a key folds to: its first candidate in GBK, else its first (頫 → 俯, 颺 → 飏)."""
    return next((v for v in values if in_gbk(v)), values[0])


def fold_table(ts: dict[str, list[str]], st: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """The table (traditional → simplified, single characters) and what was left out, with why."""
    targets = {v for values in ts.values() for v in values if v}
    table: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for key, values in ts.items():
        if len(key) != 1 or not values or any(len(v) != 1 for v in values):
            left_out[key] = "not a single character"
        elif key in values:
            left_out[key] = "also written so in simplified Chinese (its own candidate)"
        elif key in st:
            left_out[key] = "a simplified character (a key of STCharacters)"
        elif key in targets:
            left_out[key] = "another character's simplified form"
        elif in_gb2312(key):
            left_out[key] = "in GB2312, the mainland simplified set (麴, 榘, 後, 摺…)"
        else:
            table[key] = chosen(values)
    return table | second_forms(ts, st, table), left_out


def second_forms(ts: dict[str, list[str]], st: dict[str, list[str]], table: dict[str, str]) -> dict[str, str]:
    """The other simplified candidates of a key in `table` that stand for it alone (its only traditional form in
    STCharacters, not itself a key of TSCharacters nor another key's value): folded onto the form taken."""
    values = set(table.values())
    forms: dict[str, str] = {}
    for key, folded in table.items():
        for other in ts[key]:
            if other != folded and st.get(other) == [key] and other not in ts and other not in values:
                forms[other] = folded
    return forms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ts_characters", type=Path, help="OpenCC data/dictionary/TSCharacters.txt")
    parser.add_argument("st_characters", type=Path, help="OpenCC data/dictionary/STCharacters.txt")
    args = parser.parse_args()
    ts, st = read_dictionary(args.ts_characters), read_dictionary(args.st_characters)
    table, left_out = fold_table(ts, st)
    several = sum(1 for key in table if len(ts.get(key, ())) > 1)
    second = sorted(key for key in table if key not in ts)
    digest = " ".join(
        f"{p.name} sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:16]}…"
        for p in (args.ts_characters, args.st_characters)
    )
    lines = [f"# OpenCC (Apache-2.0) {digest}: traditional or variant character, simplified. See name_fold.md."]
    lines += [f"{key}\t{value}" for key, value in sorted(table.items())]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write(
        f"{len(table)} characters written to {OUT} ({several} of several candidates, the first in GBK taken; "
        f"{len(second)} second forms folded with them: {' '.join(second)}); "
        f"{len(left_out)} left out: {' '.join(sorted(left_out))}\n"
    )


if __name__ == "__main__":
    main()
