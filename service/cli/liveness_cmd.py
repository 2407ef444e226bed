"""`pension-cert liveness`: liveness of one selfie video or of a CSV batch (models loaded once);
`pension-cert calibrate-liveness`: the passive anti-spoofing threshold from a labelled spoof set."""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.packs import load_pack
from pipelines.errors import PipelineError
from pipelines.liveness import LivenessChecker, LivenessConfig, parse_actions
from pipelines.liveness.calibrate import calibrate, write_entry
from pipelines.liveness.passive import DEFAULT_CALIBRATION_PATH
from service.cli.common import CliError, emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("liveness", help="liveness check of a selfie video (passive + action challenge)")
    p.add_argument("video", nargs="?", type=Path, metavar="VIDEO")
    p.add_argument("--challenge", help="comma-separated actions in order, e.g. blink,turn_left")
    p.add_argument("--batch", type=Path, help="CSV with a column path (and optional challenge): one JSON line each")
    p.add_argument("--root", type=Path, default=Path("."), help="directory the CSV paths are relative to")
    p.add_argument("--pack", help="model pack (default: $PENSION_CERT_MODEL_PACK or 'default')")
    p.add_argument("--mirrored", action="store_true", help="the video is mirrored (selfie preview recording)")
    p.set_defaults(func=_run)
    c = sub.add_parser("calibrate-liveness", help="calibrate the passive anti-spoofing threshold")
    c.add_argument("--spoof", type=Path, required=True, help="CSV path,media,label (real/spoof)")
    c.add_argument("--root", type=Path, required=True, help="directory the CSV paths are relative to")
    c.add_argument("--pack", help="model pack")
    c.add_argument("--out", type=Path, default=DEFAULT_CALIBRATION_PATH, help="calibration file to update")
    c.add_argument("--dry-run", action="store_true", help="print, do not write")
    c.set_defaults(func=_calibrate)


def _actions(text: str | None) -> tuple[str, ...]:
    try:
        return parse_actions(text)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _checker(args: argparse.Namespace) -> LivenessChecker:
    config = LivenessConfig()
    if args.mirrored:
        config = replace(config, actions=replace(config.actions, mirrored=True))
    return LivenessChecker(load_pack(args.pack), config)


def _run(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.video is not None:
            raise CliError("give either VIDEO or --batch CSV, not both")
        return _run_batch(args)
    if args.video is None:
        raise CliError("liveness needs a VIDEO (or --batch CSV)")
    actions = _actions(args.challenge)
    result = _checker(args).check(args.video, actions)
    emit({"video": str(args.video), **result.to_dict()})
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    try:
        with args.batch.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise CliError(f"cannot read {args.batch}: {exc.strerror}") from exc
    if rows and "path" not in rows[0]:
        raise CliError(f"{args.batch} needs a column named path")
    checker = _checker(args)
    for row in rows:
        out: dict[str, Any] = {"path": row["path"]}
        try:
            actions = parse_actions(row.get("challenge") or args.challenge)
            out.update(checker.check(args.root / row["path"], actions).to_dict())
        except ValueError as exc:
            out.update(passed=False, reasons=[], error="BAD_CHALLENGE", detail=str(exc))
        except PipelineError as exc:
            out.update(passed=False, reasons=[exc.reason.value], error=exc.reason.value, detail=exc.detail)
        emit(out)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    checker = LivenessChecker(load_pack(args.pack))
    entry = calibrate(checker, args.spoof, args.root)
    if not args.dry_run:
        entry["calibration_version"] = write_entry(entry, args.out)
    emit(entry)
    return 0
