"""`pension-cert calibrate-faces`: thresholds at FAR 1e-2/1e-3/1e-4 from labelled pairs → calibration file."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.face_match.calibrate import calibrate, write_entry
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH
from service.cli.common import emit
from service.cli.match_cmd import build_matcher


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("calibrate-faces", help="calibrate face-match thresholds from a labelled pair list")
    p.add_argument("--pairs", type=Path, required=True, help="CSV path_a,path_b,label (1 = same person)")
    p.add_argument("--root", type=Path, required=True, help="directory the CSV paths are relative to")
    p.add_argument("--faces", type=Path, help="CSV path,identity,source: adds all-vs-all impostor pairs")
    p.add_argument("--faces-source", help="only this source of --faces (identities are unique per source)")
    p.add_argument("--pack", help="model pack")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="calibrate without flip test-time augmentation")
    p.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION_PATH, help="calibration file to update")
    p.add_argument("--dry-run", action="store_true", help="print, do not write")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    matcher = build_matcher(args.pack, args.flip)
    entry = calibrate(matcher, args.pairs, args.root, args.faces, args.faces_source)
    if not args.dry_run:
        entry["calibration_version"] = write_entry(entry, args.out)
    emit(entry)
    return 0
