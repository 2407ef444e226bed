"""`pension-cert revoke`: revoke a certification found fraudulent, for an operator without the staff console (the
bureau's death-record match or fund audit named it). The certification by its id, its session, or the person's
external id and the day; a reason and a note; `--actor` names who decided (required: the audit trail records
`cli:<actor>` as the revocation's actor, with the account that ran the command). docs/operations.md, "Revoking a
certification"; the work is service/certification/revoke_request.py (the rule: service/certification/revocation.py).

Exit 0 with the revocation as one JSON line (with `evidence`: the session's media held, with the hold's end, or
deleted already); a refusal (unknown, ambiguous or already revoked certification, an id no row can hold, a
missing reason or note) is one line `pension-cert: CODE: detail` and exit 2."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import datetime as dt

from service.adapters.cli.common import checked_actor, emit, os_user

HELP = "revoke a certification found fraudulent (by id, session, or person and day), as --actor"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("revoke", help=HELP)
    which = p.add_argument_group("the certification (one of)")
    which.add_argument("--certification", type=int, metavar="ID", help="its id (the certificate check shows it)")
    which.add_argument("--session", metavar="SESSION_ID", help="the session it accepted")
    which.add_argument("--person", metavar="EXTERNAL_ID", help="the person's external id, with --date")
    which.add_argument("--date", type=dt.date.fromisoformat, metavar="YYYY-MM-DD", help="the certification's day")
    p.add_argument("--reason", required=True, help="impersonation (冒领), wrong_accept (错误受理) or other")
    p.add_argument("--note", required=True, help="what was found (1 to 500 characters)")
    p.add_argument("--actor", required=True, help="who decided the revocation (a name or staff number): audited")
    p.set_defaults(func=_revoke)


def _revoke(args: argparse.Namespace) -> int:
    actor = checked_actor(args.actor, "REVOKE_ACTOR")
    import service.schema
    from service.adapters.cli.common import load_settings
    from service.certification.context import ServiceContext
    from service.certification.revoke_request import Target, revoke_requested
    from service.features.install import install_features

    target = Target(args.certification, args.session, args.person, args.date)
    # The features' share of a revocation (a relative's binding locked) is their RevokedHook: installed here too.
    ctx = install_features(ServiceContext(load_settings(), schema=service.schema.metadata))
    via = {"via": "cli", "os_user": os_user()}
    try:
        with ctx.db() as db:
            done = revoke_requested(db, ctx, target, args.reason, args.note, "cli:" + actor, None, via)
    finally:
        ctx.engine.dispose()
    emit(done.as_json())
    return 0
