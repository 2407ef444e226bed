"""The two-column tables pipelines/ ships in data/ (regions.tsv, name_fold.tsv): `key<TAB>value` per line, `#`
comments, read whole."""

from __future__ import annotations

from pathlib import Path


def read_pairs(path: Path) -> dict[str, str]:
    """Each line's key → its value, in the file's order (a later line with the same key wins)."""
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("\t")
            pairs[key] = value
    return pairs
