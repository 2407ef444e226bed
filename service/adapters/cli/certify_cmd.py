"""`pension-cert certify`: the whole decision offline, one JSON object on stdout; with ``--batch CSV`` one JSON
line per row, the models loaded once (a bureau certifying a counter's day of people pays the start-up once).

``--beneficiary-id`` is either the beneficiary's ID number (the card must carry it) or an ``external_id`` in
the configured service database, whose ID number and enrolled face template are then used.

An unreadable ID-card photo and an unreadable video are the same kind of failure: input the command cannot
certify from. Both exit 2 with their reason code (one row's ``error`` in a batch), before any model runs.

The card is judged on the bureau's day, as the service's worker judges it (docs/security.md Parts AJ and AT): the
date in ``PENSION_CERT_TIME_ZONE`` (Asia/Shanghai by default) on the service's clock, not the machine's own date
(07:30 on 6 December in Beijing is still the 5th on a machine set to UTC). An unknown zone exits 4.
"""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError
from service.adapters.cli.common import (
    EXIT_CONFIG,
    EXIT_INPUT,
    CliError,
    actions_or_fail,
    as_cli_error,
    emit,
    read_csv_rows,
    require_media,
    validation_lines,
)
from service.adapters.cli.liveness_cmd import LIGHT_HELP, LIGHT_MODE_HELP, light_or_fail
from service.certification.errors import ServiceError

if TYPE_CHECKING:  # imported where used: building the parser must not load numpy, OpenCV or onnxruntime
    from pipelines.decision.runner import Certifier
    from service.certification.context import ServiceContext

SUMMARY_KEYS = ("decision", "reasons", "messages", "scores", "thresholds", "model_versions", "references")
BATCH_COLUMNS = ("id_card", "video")  # required; optional: challenge, light, beneficiary_id
CLI_ACTOR = "cli:certify"  # audit actor of the command's reads of the service database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("certify", help="ID card + selfie video → accept / review / reject (offline)")
    p.add_argument("--id-card", type=Path, metavar="IMAGE", help="photo of the ID card (portrait side)")
    p.add_argument("--video", type=Path, metavar="VIDEO", help="selfie video with the actions")
    p.add_argument("--challenge", metavar="ACTIONS", help="actions asked, in order, e.g. blink,turn_left")
    p.add_argument("--beneficiary-id", metavar="ID", help="expected ID number, or external_id in the database")
    p.add_argument("--light", metavar="COLOURS", help=LIGHT_HELP)
    p.add_argument("--light-mode", choices=("observe", "enforce"), default="observe", help=LIGHT_MODE_HELP)
    p.add_argument(
        "--batch",
        type=Path,
        metavar="CSV",
        help="CSV with columns id_card,video (optional challenge, light, beneficiary_id): one JSON line per row",
    )
    p.add_argument("--root", type=Path, default=Path("."), help="directory the --batch CSV paths are relative to")
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


class _Beneficiaries:
    """Resolves --beneficiary-id; the service database is opened once, on the first external_id."""

    def __init__(self) -> None:
        self._ctx: ServiceContext | None = None

    def expected(self, beneficiary: str | None) -> tuple[str | None, Any]:
        from service.certification import idnumber
        from service.infra.security import mask_number_reads, normalise_id

        if not beneficiary:
            return None, None
        number = normalise_id(beneficiary)
        if idnumber.validate(number, bureau_today(bureau_zone())) is None:  # born up to the bureau's today: a number
            return number, None
        # Lazy: the database layer loads only for an external_id.
        from sqlalchemy import select

        import service.schema
        from service.adapters.cli.common import load_settings, os_user
        from service.certification.audit import MISS, asked, audit_read
        from service.certification.context import ServiceContext
        from service.certification.models import Beneficiary
        from service.certification.templates import load_template

        self._ctx = self._ctx or ServiceContext(load_settings(), schema=service.schema.metadata)
        with self._ctx.db() as db:
            b = db.scalar(select(Beneficiary).where(Beneficiary.external_id == beneficiary))
            # The person's full ID number and face template leave the database here: audited as the API's reads
            # are (a miss too), naming the OS account that ran the command.
            if b is None:
                audit_read(
                    db, CLI_ACTOR, MISS, "-", {"by": "external_id", "asked": asked(beneficiary), "os_user": os_user()}
                )
                # Masked: a mistyped ID number (a wrong check digit) lands here, and stderr goes to logs.
                shown = mask_number_reads(beneficiary)
                detail = f"no beneficiary {shown!r}: give an ID number or a known external_id"
                raise CliError(detail, code="BENEFICIARY_UNKNOWN")
            number = self._ctx.keyring.decrypt_field(b.id_enc, "beneficiary.id_number")
            template = load_template(self._ctx, b)
            read = {"by": "external_id", "id_number": True, "template": template is not None, "os_user": os_user()}
            audit_read(db, CLI_ACTOR, "beneficiary.read", b.external_id, read)
            return number, template


@dataclasses.dataclass(frozen=True)
class Bureau:
    time_zone: str  # an IANA name, checked (clock.HasTimeZone)


def bureau_zone() -> Bureau:
    """The bureau's time zone read by the service's settings (PENSION_CERT_TIME_ZONE in any case, its default and
    its check: config.TimeZoneSettings), alone: the offline command needs no other setting. An unknown zone:
    CliError, exit 4, the line `load_settings` would print."""
    from pydantic import ValidationError  # lazy: pydantic, once the command runs

    from service.infra.config import TimeZoneSettings  # lazy: pydantic-settings, once the command runs

    try:
        return Bureau(TimeZoneSettings().time_zone)
    except ValidationError as exc:
        lines = validation_lines(TimeZoneSettings, exc)
        raise CliError("\n".join(lines), EXIT_CONFIG, code="CONFIG_INVALID") from None


def bureau_today(bureau: Bureau) -> dt.date:
    from service.infra.clock import local_today  # lazy: as every import of a handler

    return local_today(bureau)  # the service's clock, in the bureau's zone


def _check_args(args: argparse.Namespace) -> None:
    if args.batch is not None:
        if args.id_card or args.video or args.proxy_operator_video:
            raise CliError("give either --batch CSV or --id-card/--video, not both")
    elif args.id_card is None or args.video is None:
        raise CliError("certify needs --id-card IMAGE and --video VIDEO (or --batch CSV)")
    if args.proxy_first and args.proxy_operator_video is None:
        raise CliError("--proxy-first needs --proxy-operator-video")


def _certify_one(
    certifier: Certifier,
    people: _Beneficiaries,
    args: argparse.Namespace,
    card: Path,
    video: Path,
    challenge: str | None,
    beneficiary: str | None,
    bureau: Bureau,
    light_text: str | None = None,
) -> dict[str, Any]:
    """One certification, the card judged on the bureau's today; raises CliError / PipelineError for input it
    cannot certify from."""
    from pipelines.media import load_image  # lazy: numpy and Pillow
    from service.certification.processing import redact  # lazy: the service's one masking of a stored result

    actions = actions_or_fail(challenge)
    light = light_or_fail(light_text)
    require_media(card, "image")
    require_media(video, "video")
    expected, template = people.expected(beneficiary)
    # Decoded here, not inside the run: an unreadable card is an input error (exit 2), like an unreadable video.
    report = certifier.run(
        load_image(card), video, actions, expected, template, today=bureau_today(bureau), light=light
    )
    operator_match = None
    if args.proxy_operator_video is not None:
        from service.features.proxy.offline import apply_proxy_rules

        decision, operator_match = apply_proxy_rules(certifier, report, args.proxy_operator_video, args.proxy_first)
        report = dataclasses.replace(report, decision=decision)
    # The liveness frame hashes (with --full) only with -v. Every ID number masked, the OCR diagnostics' raw reads
    # of the number line too (`--full`: id_card.checks.number_raw), as the service stores and serves a result.
    out = redact(report.to_dict(args.verbose))
    if not args.full:
        out = {k: out[k] for k in SUMMARY_KEYS}
    if args.proxy_operator_video is not None:
        out["operator_match"] = operator_match  # elder-vs-operator similarity (None: no face to compare)
    return out


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    if args.batch is not None:
        return _run_batch(args)
    actions_or_fail(args.challenge)  # usage errors first, before any model loads
    light_or_fail(args.light)
    for path, kind in ((args.id_card, "image"), (args.video, "video")):
        require_media(path, kind)
    if args.proxy_operator_video is not None:
        require_media(args.proxy_operator_video, "video")
    bureau = bureau_zone()  # before the models load: a settings mistake answers at once
    from pipelines.decision.runner import Certifier  # lazy: every model of the pack

    certifier = Certifier(args.pack, light_mode=args.light_mode)
    people = _Beneficiaries()
    emit(
        _certify_one(
            certifier, people, args, args.id_card, args.video, args.challenge, args.beneficiary_id, bureau, args.light
        )
    )
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    """One JSON line per row; a row that cannot be certified carries ``error`` (its reason code) and
    ``detail``, and the batch goes on. Exit 0 once every row has its line; a problem that is no row's (invalid
    settings, the database unavailable) stops the batch with its own exit code."""
    rows = read_csv_rows(args.batch, BATCH_COLUMNS)
    bureau = bureau_zone()  # each row's card judged on the bureau's day it is certified (a batch may pass midnight)
    from pipelines.decision.runner import Certifier  # lazy: every model of the pack, loaded once for the batch

    light_or_fail(args.light)  # a usage error before the models load
    certifier = Certifier(args.pack, light_mode=args.light_mode)
    people = _Beneficiaries()
    for row in rows:
        head: dict[str, Any] = {"id_card": row["id_card"], "video": row["video"]}
        try:
            out = _certify_one(
                certifier,
                people,
                args,
                args.root / row["id_card"],
                args.root / row["video"],
                row.get("challenge") or args.challenge,
                row.get("beneficiary_id") or args.beneficiary_id,
                bureau,
                row.get("light") or args.light,
            )
        except (CliError, ServiceError) as exc:  # a domain refusal (the operator's video) is reported alike
            error = exc if isinstance(exc, CliError) else as_cli_error(exc)
            if error.exit_code != EXIT_INPUT:
                # The settings, the database, the models: every row after this one would fail alike. The batch
                # stops with that exit code (it writes nothing: run it again once fixed), not exit 0.
                raise error from None
            out = {"decision": None, "error": error.code or "BAD_INPUT", "detail": error.detail}
        except PipelineError as exc:
            out = {"decision": None, "error": exc.reason.value, "detail": exc.detail}
        emit({**head, **out})
    return 0
