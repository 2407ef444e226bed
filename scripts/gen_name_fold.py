"""Regenerate pipelines/data/name_fold.tsv (a traditional or variant character → its simplified form) from OpenCC.

    python scripts/gen_name_fold.py TSCharacters.txt STCharacters.txt

Reads OpenCC's character dictionaries (github.com/BYVoid/OpenCC, data/dictionary/, Apache-2.0) from the paths
given (fetched by hand at the commit pinned in pipelines/data/name_fold.md; never downloaded here) and writes one
`traditional<TAB>simplified` line per single character: the first simplified candidate when OpenCC gives several.
A character that is itself written in simplified Chinese is never a key, so that folding never makes two
simplified names equal: one listed among its own candidates (乾 干 乾, 於 于 於), one that is a simplified
character with a traditional form (a key of STCharacters.txt), one that is another character's simplified form,
or one in GB2312, the mainland simplified set (麴, a surname apart from 曲; 榘 of 韩复榘; 後, 摺, 菸…).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

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


def in_gb2312(char: str) -> bool:
    """Whether `char` is in GB2312, the mainland simplified character set: written so in simplified Chinese."""
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def fold_table(ts: dict[str, list[str]], st: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """The table (traditional → simplified, single characters) and what was left out, with why."""
    targets = {v for values in ts.values() for v in values if v}
    table: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for key, values in ts.items():
        if len(key) != 1 or not values or len(values[0]) != 1:
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
            table[key] = values[0]
    return table, left_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ts_characters", type=Path, help="OpenCC data/dictionary/TSCharacters.txt")
    parser.add_argument("st_characters", type=Path, help="OpenCC data/dictionary/STCharacters.txt")
    args = parser.parse_args()
    ts, st = read_dictionary(args.ts_characters), read_dictionary(args.st_characters)
    table, left_out = fold_table(ts, st)
    several = sum(1 for key in table if len(ts[key]) > 1)
    digest = " ".join(
        f"{p.name} sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:16]}…"
        for p in (args.ts_characters, args.st_characters)
    )
    lines = [f"# OpenCC (Apache-2.0) {digest}: traditional or variant character, simplified. See name_fold.md."]
    lines += [f"{key}\t{value}" for key, value in sorted(table.items())]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write(
        f"{len(table)} characters written to {OUT} ({several} of several candidates, the first taken); "
        f"{len(left_out)} left out: {' '.join(sorted(left_out))}\n"
    )


if __name__ == "__main__":
    main()
