"""`pension-cert rekey`: re-seal with the current media key (PENSION_CERT_MEDIA_KEY) every encrypted column and
every media object that a previous key (PENSION_CERT_MEDIA_KEYS_PREVIOUS) sealed, and recompute with the current
signing key (PENSION_CERT_SIGNING_KEY) every ID-number look-up hash a previous one
(PENSION_CERT_SIGNING_KEYS_PREVIOUS) made; `--check` only counts what is left. docs/operations.md, "Rotating the
media key" and "Rotating the signing key"; the work itself is service/certification/rekey.py."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from service.adapters.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE, CliError, emit, os_user

if TYPE_CHECKING:
    from sqlalchemy.orm import InstrumentedAttribute

    from service.certification.rekey import Count, HashedColumn, SealedColumn

HELP = "re-seal fields and media with the current media key, re-hash look-ups with the current signing key"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rekey", help=HELP)
    p.add_argument("--batch", type=int, default=500, help="rows (objects) per transaction (audit entry)")
    p.add_argument(
        "--check", action="store_true", help="change nothing: count what a previous key still seals or hashed"
    )
    p.add_argument("--skip-media", action="store_true", help="the database's fields only")
    p.add_argument(
        "--after",
        default="",
        metavar="KEY",
        help="media: only the objects whose key sorts after KEY (the `through` of the last keys.rekey media audit "
        "entry of an interrupted run): they are not read again",
    )
    p.set_defaults(func=_rekey)


def sealed_columns() -> list[SealedColumn]:
    """Every column sealed with the data key (Keyring.encrypt_field), with its associated-data context: the one
    list (tests/service/test_key_rotation.py checks that every encrypt_field call in service/ is in it)."""
    from service.certification.models import Beneficiary
    from service.certification.rekey import SealedColumn
    from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperatorIdentity

    return [
        SealedColumn(Beneficiary.id, Beneficiary.id_enc, "beneficiary.id_number"),
        SealedColumn(Beneficiary.id, Beneficiary.template, "beneficiary.template", binary=True),
        SealedColumn(ProxyClaim.session_id, ProxyClaim.id_enc, CLAIM_FIELD),
        SealedColumn(
            ProxyOperatorIdentity.operator_id, ProxyOperatorIdentity.template, "proxy_operator.template", binary=True
        ),
    ]


def hashed_columns() -> list[HashedColumn]:
    """Every ID-number look-up hash stored beside its sealed number (Keyring.id_hash): recomputed by the rekey.
    The beneficiaries first: a relative's claim of a listed number moves with the roster row (`hash_copies`).
    A relative's verified identity last, from the number of the claim it was verified from (the operator's
    latest claim of the same masked number): counted, and moved, also when a decision copied a claim's old hash
    after the rekey had moved the claim."""
    from sqlalchemy import select

    from service.certification.models import Beneficiary
    from service.certification.rekey import HashedColumn
    from service.features.proxy.models import CLAIM_FIELD, ProxyClaim, ProxyOperatorIdentity

    who = ProxyOperatorIdentity
    claim = (
        select(ProxyClaim.id_enc)
        .where(ProxyClaim.operator_id == who.operator_id, ProxyClaim.id_masked == who.id_masked)
        .where(ProxyClaim.id_enc != "")  # an unaccepted claim emptied by retention (proxy/claim_retention.py)
        .order_by(ProxyClaim.created_at.desc(), ProxyClaim.session_id)
        .limit(1)
        .scalar_subquery()
    )
    return [
        HashedColumn(Beneficiary.id, Beneficiary.id_hash, Beneficiary.id_enc, "beneficiary.id_number", unique=True),
        HashedColumn(ProxyClaim.session_id, ProxyClaim.id_hash, ProxyClaim.id_enc, CLAIM_FIELD),
        HashedColumn(who.operator_id, who.person_hash, claim, CLAIM_FIELD),
    ]


def hash_copies() -> list[InstrumentedAttribute[Any]]:
    """The columns holding a copy of a person's look-up hash (compared with the roster's): moved with it."""
    from service.features.proxy.models import ProxyClaim, ProxyOperatorIdentity

    return [ProxyClaim.id_hash, ProxyOperatorIdentity.person_hash]


def _rekey(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    import service.schema
    from service.adapters.cli.common import load_settings
    from service.certification.context import ServiceContext
    from service.certification.rekey import rehash_column, reseal_column

    ctx = ServiceContext(load_settings(), schema=service.schema.metadata)
    write, who = not args.check, {"os_user": os_user()}
    fields = {c.name: reseal_column(ctx, c, args.batch, write, who) for c in sealed_columns()}
    # After the fields: the numbers are opened to be hashed (with any media key in use).
    hashes = {c.name: rehash_column(ctx, c, hash_copies(), args.batch, write, who) for c in hashed_columns()}
    media = None if args.skip_media else _media(ctx, args, write, who)
    counts = [*fields.values(), *hashes.values(), *([media] if media else [])]
    unreadable = sum(len(c.unreadable) + len(c.failed) for c in counts)
    left = sum(c.resealed for c in counts) if args.check else 0
    report: dict[str, Any] = {
        "ok": unreadable == 0 and left == 0,
        "check": args.check,
        "fields": {name: c.as_dict() for name, c in fields.items()},
        "hashes": {name: c.as_dict("rehashed") for name, c in hashes.items()},
        "media": media.as_dict() if media else None,
        "previous_keys": len(ctx.settings.security.media_keys_previous),
        "previous_signing_keys": len(ctx.settings.security.signing_keys_previous),
        "leaked_signing_keys": len(ctx.settings.security.signing_keys_leaked),
    }
    emit(report)
    return 0 if report["ok"] else EXIT_FAILED


def _media(ctx: Any, args: argparse.Namespace, write: bool, who: dict[str, str]) -> Count:
    """The media store's part; a full store stops the run like one that does not answer (one line, exit 5): every
    write after would fail too, and the rerun once space is freed goes on from what is left."""
    from service.certification.rekey import reseal_media
    from service.infra.storage import StorageFullError

    try:
        return reseal_media(ctx, args.batch, write, who, after=args.after)
    except StorageFullError as exc:
        raise CliError(f"the media store is full: {exc}", EXIT_UNAVAILABLE, code="STORAGE_FULL") from exc
