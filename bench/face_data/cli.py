"""Command line: ``python -m bench.face_data fetch|build-manifest ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import bench.face_data as package
from bench.face_data.cache import default_cache, fetch
from bench.face_data.manifest import MANIFEST, read_manifest, summarize
from bench.face_data.sources import build_links, build_manifest
from bench.liveness_data.snapshots import IntegrityError


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.face_data", description=(package.__doc__ or "").split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="verify the pinned files and write one image per face into the cache")
    f.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    f.add_argument(
        "--cache", type=Path, default=None, help="default: $PENSION_CERT_FACES_DIR or ~/.cache/pension-cert/faces"
    )
    f.add_argument("--manifest", type=Path, default=MANIFEST)
    b = sub.add_parser("build-manifest", help="(maintainers) pin the files of the snapshots")
    b.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    b.add_argument("--manifest", type=Path, default=MANIFEST)
    k = sub.add_parser("build-links", help="(maintainers) same-person links from two recognizers' embeddings")
    k.add_argument(
        "--embeddings",
        type=Path,
        default=default_cache() / "embeddings",
        help="folder with default.npz and insightface.npz (bench/face_match.py --population-data)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.cmd == "build-manifest":
            print(summarize(build_manifest(args.mirror_root, args.manifest)))
            return 0
        if args.cmd == "build-links":
            print({"links": build_links(args.embeddings)})
            return 0
        cache = args.cache or default_cache()
        written = fetch(args.mirror_root, cache, args.manifest)
        print({"cache": str(cache), "written": written, "sources": summarize(read_manifest(args.manifest))})
        return 0
    except (IntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
