"""`pension-cert id-card read IMAGE [IMAGE ...]`: one JSON line per image; the OCR models load once."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.errors import MediaError
from service.adapters.cli.common import EXIT_INPUT, emit, file_problem


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("id-card", help="read resident ID-card photos")
    actions = p.add_subparsers(dest="id_card_command", required=True)
    r = actions.add_parser("read", help="read the portrait side (name, sex, … number, portrait box) of each image")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--pack", help="model pack for the portrait face check (default: $PENSION_CERT_MODEL_PACK)")
    r.add_argument("--emblem", action="store_true", help="the images show the emblem side (签发机关, 有效期限)")
    r.add_argument(
        "--show-number",
        action="store_true",
        help="print the ID numbers (and the OCR's raw reads of them) in clear; default masked, 3701**********1234 "
        "(for OCR development on synthetic cards, not on citizens' photos)",
    )
    r.set_defaults(func=_run_read)


def _run_read(args: argparse.Namespace) -> int:
    from pipelines.id_card import IdCardReader  # lazy: the OCR models load only when the command runs
    from pipelines.media import load_image
    from service.adapters.cli.certify_cmd import bureau_today, bureau_zone
    from service.certification.processing import redact  # lazy: the service's one masking of a card's read

    bureau = bureau_zone()  # before the models load: an unknown time zone answers at once (exit 4)
    reader = IdCardReader(args.pack)
    failures = 0
    for path in args.images:
        out: dict[str, Any] = {"image": path}
        problem = file_problem(Path(path))
        if problem is not None:  # a missing file has its own code, not MEDIA_CORRUPT
            failures += 1
            out.update(error=problem.code, detail=problem.detail, errors=[problem.code], messages=[])
            emit(out)
            continue
        try:
            image = load_image(path)
        except MediaError as exc:
            # One bad file must not stop a batch: report it on its own line, with its reason code.
            failures += 1
            out.update(
                error=exc.reason.value, detail=exc.detail, errors=[exc.reason.value], messages=[exc.reason.message_zh]
            )
            emit(out)
            continue
        # The validity and the number's birth date judged on the bureau's day, as the service judges them (not the
        # machine's, the day before Beijing's from 16:00 to 24:00 UTC).
        today = bureau_today(bureau)
        result = reader.read_emblem(image, today) if args.emblem else reader.read(image, today)
        read = result.to_dict()
        out.update(read if args.show_number else redact(read))  # masked as the service stores and shows it
        emit(out)
    return 0 if failures == 0 else EXIT_INPUT
