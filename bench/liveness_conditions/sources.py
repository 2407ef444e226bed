"""Which real clips the generator degrades: a few per person, so every person's conditions stay in one fold.

The evaluation of 2026-12-04 used `select_sources` with the default limits on the fetched index: every GRID
speaker's clips, 2 NUAA clips and 1 Replay-Attack clip per person (90 sources).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from bench.liveness_conditions.clip import CSV_COLUMNS

# Per source (the subject prefix before ':'): at most this many real clean clips per person; None = all.
DEFAULT_LIMITS: Mapping[str, int | None] = {"replay_attack": 1, "nuaa": 2, "grid": None}


def select_sources(index_csv: Path, out_csv: Path, limits: Mapping[str, int | None] = DEFAULT_LIMITS) -> int:
    """Write the chosen real, clean rows of `index_csv` (in its order) to `out_csv` beside it; returns the count."""
    if out_csv.parent.resolve() != index_csv.parent.resolve():
        raise ValueError("the sources CSV must sit beside the index: its paths are relative to that folder")
    with index_csv.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("label") == "real" and r.get("condition") == "clean"]
    taken: Counter[str] = Counter()
    chosen = []
    for row in rows:
        subject = row["subject"]
        limit = limits.get(subject.split(":", 1)[0], 1)
        if limit is None or taken[subject] < limit:
            taken[subject] += 1
            chosen.append(row)
    with out_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(chosen)
    return len(chosen)
