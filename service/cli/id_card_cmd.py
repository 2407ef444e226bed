"""`pension-cert id-card read IMAGE [IMAGE ...]`: one JSON line per image; the OCR models load once."""

from __future__ import annotations

import argparse
from typing import Any

from pipelines.errors import MediaError
from pipelines.id_card import IdCardReader
from pipelines.media import load_image
from service.cli.common import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("id-card", help="read resident ID-card photos")
    actions = p.add_subparsers(dest="id_card_command", required=True)
    r = actions.add_parser("read", help="read the portrait side (name, sex, … number, portrait box) of each image")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--pack", help="model pack for the portrait face check (default: $PENSION_CERT_MODEL_PACK)")
    r.add_argument("--emblem", action="store_true", help="the images show the emblem side (签发机关, 有效期限)")
    r.set_defaults(func=_run_read)


def _run_read(args: argparse.Namespace) -> int:
    reader = IdCardReader(args.pack)
    failures = 0
    for path in args.images:
        out: dict[str, Any] = {"image": path}
        try:
            image = load_image(path)
        except MediaError as exc:
            # One bad file must not stop a batch: report it on its own line, with its reason code.
            failures += 1
            out.update(error=exc.reason.value, detail=exc.detail, errors=[exc.reason.value],
                       messages=[exc.reason.message_zh])
            emit(out)
            continue
        result = reader.read_emblem(image) if args.emblem else reader.read(image)
        out.update(result.to_dict())
        emit(out)
    return 0 if failures == 0 else 2
