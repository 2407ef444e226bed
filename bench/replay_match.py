"""Near-duplicate (replay) check: re-timed copies caught, and different clips of one person not confused.

    python bench/replay_match.py [--cache ~/.cache/pension-cert/liveness] [--copies 40] \
        --out bench/results/replay_match.json

On the real clips of the liveness cache (docs/liveness_data.md):
- false matches: every pair of two different real clips of the same person (Replay-Attack: separate takes of one
  session; NUAA: parts of one continuous capture, the hardest case: same person, place and pose seconds apart);
- re-timed copies: ``--copies`` real clips decoded and re-encoded at 0.6×, 0.75×, 1.25× and 1.6× speed (every
  frame kept, timestamps scaled, as ``ffmpeg -vf setpts``), each compared with its original.
Both with the deployed rate search (``pipelines.liveness.duplicates.RATES``) and with 1:1 time alignment only (the
check before re-timing was handled), with exact 95 % intervals.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.liveness_data.assembly import encode_mp4  # noqa: E402
from bench.liveness_data.cache import default_cache  # noqa: E402
from pipelines.liveness import duplicates  # noqa: E402
from pipelines.liveness.evaluation.intervals import clopper_pearson  # noqa: E402
from pipelines.liveness.video import decode_all  # noqa: E402

SPEEDS = (0.6, 0.75, 1.25, 1.6)
ALIGNMENTS = {"rate_search": duplicates.RATES, "one_to_one": (1.0,)}


def frame_hashes(data: bytes) -> list[int]:
    """The hashes the service stores for a video (sampled as the liveness stage samples it)."""
    return decode_all(data).hasher.hashes()


def retimed(path: Path, speed: float, out: Path) -> bytes:
    """Every frame of the clip, re-encoded with its timestamps scaled by ``speed``."""
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate or 25)
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    encode_mp4(out, frames, max(1, round(rate / speed)))
    return out.read_bytes()


def rate(k: int, n: int) -> dict[str, Any]:
    ci = clopper_pearson(k, n)
    return {"count": k, "n": n, "rate": round(k / n, 5), "ci95": [round(ci.low, 5), round(ci.high, 5)]}


def matches(pairs: Sequence[tuple[list[int], list[int]]], rates: tuple[float, ...]) -> int:
    duplicates.RATES = rates
    try:
        return sum(duplicates.near_duplicate(a, b) for a, b in pairs)
    finally:
        duplicates.RATES = ALIGNMENTS["rate_search"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=default_cache())
    ap.add_argument("--copies", type=int, default=40, help="real clips re-timed (evenly spread over the list)")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/replay_match.json")
    args = ap.parse_args()
    with (args.cache / "presentations.csv").open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "real" and r["condition"] == "clean"]
    t0 = time.perf_counter()
    hashes = {r["path"]: frame_hashes((args.cache / r["path"]).read_bytes()) for r in rows}
    by_subject: dict[str, list[str]] = {}
    for r in rows:
        by_subject.setdefault(r["subject"], []).append(r["path"])
    same_person: dict[str, list[tuple[list[int], list[int]]]] = {}
    for paths in by_subject.values():
        for a, b in itertools.combinations(paths, 2):
            same_person.setdefault(a.split("/")[0], []).append((hashes[a], hashes[b]))
    picked = [r["path"] for r in rows[:: max(1, len(rows) // args.copies)]][: args.copies]
    copies: dict[float, list[tuple[list[int], list[int]]]] = {s: [] for s in SPEEDS}
    with tempfile.TemporaryDirectory() as tmp:
        for p in picked:
            for s in SPEEDS:
                copies[s].append((frame_hashes(retimed(args.cache / p, s, Path(tmp) / "copy.mp4")), hashes[p]))
    report: dict[str, Any] = {
        "benchmark": "replay_match",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "real_clips": len(rows),
        "subjects": len(by_subject),
        "retimed_originals": len(picked),
    }
    for name, rates in ALIGNMENTS.items():
        report[name] = {
            "false_match_same_person": {src: rate(matches(p, rates), len(p)) for src, p in sorted(same_person.items())},
            "retimed_copies_caught": {f"{s}x": rate(matches(copies[s], rates), len(copies[s])) for s in SPEEDS},
        }
    report["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
