"""`pension-cert liveness`: liveness of one selfie video or of a CSV batch (models loaded once);
`pension-cert calibrate-liveness`: the passive anti-spoofing threshold from a labelled spoof set."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError
from service.adapters.cli.common import (
    BAD_CHALLENGE,
    CliError,
    actions_or_fail,
    emit,
    read_csv_rows,
    require_file,
    require_media,
)

if TYPE_CHECKING:  # imported where used: building the parser must not load numpy, OpenCV or onnxruntime
    from pipelines.liveness import LivenessChecker
    from pipelines.liveness.light import LightSequence

BAD_LIGHT = "BAD_LIGHT"  # --light names a colour that does not exist, or too few or too many
LIGHT_HELP = "screen-light challenge: the colours the page showed, in order, e.g. red,green,blue,white (0.8 s each)"
LIGHT_MODE_HELP = "observe: report the face's response to the light; enforce: a pass needs it seen"


def light_or_fail(text: str | None) -> LightSequence | None:
    """A ``--light`` value as a sequence (None when not given); a bad one is a usage error with its code."""
    from pipelines.liveness.light import parse_light  # data only: no model, no numpy

    try:
        return parse_light(text)
    except ValueError as exc:
        raise CliError(str(exc), code=BAD_LIGHT) from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("liveness", help="liveness check of a selfie video (passive + action challenge)")
    p.add_argument("video", nargs="?", type=Path, metavar="VIDEO")
    p.add_argument("--challenge", help="comma-separated actions in order, e.g. blink,turn_left")
    p.add_argument("--batch", type=Path, help="CSV with a column path (optional challenge, light): one JSON line each")
    p.add_argument("--root", type=Path, default=Path("."), help="directory the CSV paths are relative to")
    p.add_argument("--pack", help="model pack (default: $PENSION_CERT_MODEL_PACK or 'default')")
    p.add_argument("--mirrored", action="store_true", help="the video is mirrored (selfie preview recording)")
    p.add_argument("--light", metavar="COLOURS", help=LIGHT_HELP)
    p.add_argument("--light-mode", choices=("observe", "enforce"), default="observe", help=LIGHT_MODE_HELP)
    p.set_defaults(func=_run)
    c = sub.add_parser("calibrate-liveness", help="calibrate the passive anti-spoofing threshold")
    c.add_argument("--spoof", type=Path, required=True, help="CSV path,media,label (real/spoof)")
    c.add_argument("--root", type=Path, required=True, help="directory the CSV paths are relative to")
    c.add_argument("--pack", help="model pack")
    c.add_argument("--out", type=Path, help="calibration file to update (default: the one the liveness stage reads)")
    c.add_argument("--dry-run", action="store_true", help="print, do not write")
    c.set_defaults(func=_calibrate)


def _checker(args: argparse.Namespace) -> LivenessChecker:
    from dataclasses import replace

    from models.packs import load_pack  # lazy: onnxruntime, OpenCV and PyAV load only when a check runs
    from pipelines.liveness import LivenessChecker, LivenessConfig

    config = LivenessConfig(light_mode=args.light_mode)
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
    actions = actions_or_fail(args.challenge)
    light = light_or_fail(args.light)
    require_media(args.video, "video")  # a missing file or a photo is refused before the models load
    result = _checker(args).check(args.video, actions, light)
    emit({"video": str(args.video), **result.to_dict(args.verbose)})  # frame hashes only with -v
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    rows = read_csv_rows(args.batch, ("path",))
    light_or_fail(args.light)  # a usage error before the models load
    checker = _checker(args)
    for row in rows:
        out: dict[str, Any] = {"path": row["path"]}
        try:
            actions = actions_or_fail(row.get("challenge") or args.challenge)
            light = light_or_fail(row.get("light") or args.light)
            require_file(args.root / row["path"])  # what the file is, the pipeline says (its reason code)
            out.update(checker.check(args.root / row["path"], actions, light).to_dict(args.verbose))
        except CliError as exc:  # a bad challenge or a missing file: this row only
            out.update(passed=False, reasons=[], error=exc.code or BAD_CHALLENGE, detail=exc.detail)
        except PipelineError as exc:
            out.update(passed=False, reasons=[exc.reason.value], error=exc.reason.value, detail=exc.detail)
        emit(out)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    # Checked before the models load (file, UTF-8, columns, short rows): the calibration's reader would stop on
    # them with a traceback.
    read_csv_rows(args.spoof, ("path", "label"))
    from models.packs import load_pack  # lazy: the models load only when the command runs
    from pipelines.liveness import LivenessChecker
    from pipelines.liveness.calibrate import calibrate, write_entry
    from pipelines.liveness.passive import DEFAULT_CALIBRATION_PATH

    checker = LivenessChecker(load_pack(args.pack))
    entry = calibrate(checker, args.spoof, args.root)
    if not args.dry_run:
        entry["calibration_version"] = write_entry(entry, args.out or DEFAULT_CALIBRATION_PATH)
    emit(entry)
    return 0
