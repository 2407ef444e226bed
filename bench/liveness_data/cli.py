"""Command line: ``python -m bench.liveness_data fetch|build-manifest ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import bench.liveness_data as package
from bench.liveness_data.cache import default_cache, fetch
from bench.liveness_data.manifest import MANIFEST, read_manifest, select, summarize
from bench.liveness_data.snapshots import IntegrityError
from bench.liveness_data.sources import build_manifest


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.liveness_data", description=(package.__doc__ or "").split("\n")[0]
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="verify the pinned sources and assemble the videos into the cache")
    f.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    f.add_argument(
        "--cache", type=Path, default=None, help="default: $PENSION_CERT_LIVENESS_DIR or ~/.cache/pension-cert/liveness"
    )
    f.add_argument(
        "--limit-per-source", type=int, default=None, help="at most N presentations per source, balanced over subjects"
    )
    f.add_argument("--manifest", type=Path, default=MANIFEST)
    f.add_argument("--jobs", type=int, default=2)
    f.add_argument("--keep-sources", action="store_true", help="also copy the verified source files to the cache")
    b = sub.add_parser("build-manifest", help="(maintainers) pin the HEAD commits of the snapshots")
    b.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    b.add_argument("--manifest", type=Path, default=MANIFEST)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.cmd == "build-manifest":
            rows = build_manifest(args.mirror_root, args.manifest)
            print(summarize(rows))
            return 0
        cache = args.cache or default_cache()
        summary = fetch(args.mirror_root, cache, args.manifest, args.limit_per_source, args.jobs, args.keep_sources)
        rows = select(read_manifest(args.manifest), args.limit_per_source)
        summary.update(summarize(rows))
        summary["cache"] = str(cache)
        summary["cache_mb"] = round(sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20, 1)
        print(summary)
        return 0
    except (IntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
