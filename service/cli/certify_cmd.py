"""`pension-cert certify`: the whole decision offline, one JSON object on stdout.

``--beneficiary-id`` is either the beneficiary's ID number (the card must carry it) or an ``external_id`` in
the configured service database, whose ID number and enrolled face template are then used.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipelines.liveness import parse_actions
from service import idnumber
from service.cli.common import CliError, emit
from service.security import mask_id, normalise_id


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("certify", help="ID card + selfie video → accept / review / reject (offline)")
    p.add_argument("--id-card", required=True, type=Path, metavar="IMAGE", help="photo of the ID card (portrait side)")
    p.add_argument("--video", required=True, type=Path, metavar="VIDEO", help="selfie video with the actions")
    p.add_argument("--challenge", metavar="ACTIONS", help="actions asked, in order, e.g. blink,turn_left")
    p.add_argument("--beneficiary-id", metavar="ID", help="expected ID number, or external_id in the database")
    p.add_argument("--pack", help="model pack")
    p.add_argument("--full", action="store_true", help="include every stage's details")
    p.add_argument(
        "--proxy-operator-video",
        type=Path,
        metavar="VIDEO",
        help="proxy certification: a video of the operating relative; the elder must not be them (proxy rules)",
    )
    p.add_argument(
        "--proxy-first", action="store_true", help="with --proxy-operator-video: the elder's first proxy certification"
    )
    p.set_defaults(func=_run)


def _expected(beneficiary: str | None) -> tuple[str | None, Any]:
    if beneficiary is None:
        return None, None
    number = normalise_id(beneficiary)
    if idnumber.validate(number) is None:
        return number, None
    from sqlalchemy import select

    from service.config import get_settings
    from service.context import ServiceContext
    from service.db.models import Beneficiary
    from service.templates import load_template

    ctx = ServiceContext(get_settings())
    with ctx.db() as db:
        b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == beneficiary))
        if b is None:
            raise CliError(f"no beneficiary {beneficiary!r}: give an ID number or a known external_id")
        return ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number"), load_template(ctx, b)


def _run(args: argparse.Namespace) -> int:
    from pipelines.decision.runner import Certifier

    for path in (args.id_card, args.video):
        if not path.is_file():
            raise CliError(f"{path}: no such file")
    try:
        actions = parse_actions(args.challenge)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    expected, template = _expected(args.beneficiary_id)
    if args.proxy_first and args.proxy_operator_video is None:
        raise CliError("--proxy-first needs --proxy-operator-video")
    certifier = Certifier(args.pack)
    report = certifier.run(args.id_card.read_bytes(), args.video, actions, expected, template)
    operator_match = None
    if args.proxy_operator_video is not None:
        from service.proxy.offline import apply_proxy_rules

        operator_match = apply_proxy_rules(certifier, report, args.proxy_operator_video, args.proxy_first)
    out = report.to_dict()
    if out.get("id_card") and out["id_card"].get("id_number"):
        out["id_card"]["id_number"] = mask_id(out["id_card"]["id_number"])
    if not args.full:
        keep = ("decision", "reasons", "messages", "scores", "thresholds", "model_versions", "references")
        out = {k: out[k] for k in keep}
    if args.proxy_operator_video is not None:
        out["operator_match"] = operator_match  # elder-vs-operator similarity (None: no face to compare)
    emit(out)
    return 0
