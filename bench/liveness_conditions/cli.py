"""Command line: ``python -m bench.liveness_conditions generate|demo ...``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import bench.liveness_conditions as package
from bench.liveness_conditions.batch import generate
from bench.liveness_conditions.preview import demo
from bench.liveness_conditions.registry import DEFAULT_SET
from bench.liveness_conditions.sources import select_sources


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.liveness_conditions", description=(package.__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="derive clips from the real, clean rows of a presentations CSV")
    gen.add_argument("--index", type=Path, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--conditions", default=",".join(DEFAULT_SET))
    gen.add_argument("--per-source", type=int, default=None)
    src = sub.add_parser("sources", help="choose the real clips to degrade: a few per person (sources.csv)")
    src.add_argument("--index", type=Path, required=True)
    src.add_argument("--out", type=Path, help="default: sources.csv beside the index")
    dem = sub.add_parser("demo", help="one clip per condition from one video, plus a contact sheet")
    dem.add_argument("video", type=Path)
    dem.add_argument("--out", type=Path, required=True)
    dem.add_argument("--seed", type=int, default=0)
    dem.add_argument("--conditions", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "sources":
        out = args.out or args.index.with_name("sources.csv")
        print(f"{select_sources(args.index, out)} sources in {out}")
    elif args.command == "generate":
        names = [c for c in args.conditions.split(",") if c]
        print(generate(args.index, args.out, args.seed, names, args.per_source))
    else:
        chosen = [c for c in args.conditions.split(",") if c] if args.conditions else None
        print(demo(args.video, args.out, args.seed, chosen))
    return 0
