"""`pension-cert move-relatives`: make the relatives' accounts one channel client made another's, for an operator
whose integrator's channel key was replaced without PENSION_CERT_API_KEYS_REPLACED naming the old key (it is lost,
or the key was replaced before the setting existed). `--from` is the old key's name as the audit entries show it
(`api:<8 hex>`), `--to` the name of a channel key in `API_KEYS` (`api:<8 hex>` as the audit entries show it, under
the current or a previous signing key; printed and stored as its current name; never the key itself); `--actor`
names who decided (audited as `cli:<actor>`, with the account that ran the command). docs/operations.md,
"Replacing a channel key"; the rule is service/features/proxy/operators.py (`move_client`, `key_in_force`).

Exit 0 with `{"from", "to", "moved"}` as one JSON line; a refusal (a name no account holds, a `--to` that is no
channel key in force: an operator key's `admin:` name, `wechat-h5`, the key itself, which is not repeated; the H5
pages' accounts) is one line `pension-cert: PROXY_CLIENT_UNKNOWN: detail` on stderr, saying what is taken, and
exit 2."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse

from service.adapters.cli.common import checked_actor, emit, os_user

HELP = "move the relatives' accounts a replaced channel key made to the key that replaced it, as --actor"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("move-relatives", help=HELP)
    p.add_argument("--from", dest="old", required=True, metavar="NAME", help="the old key's name (api:<8 hex>)")
    p.add_argument(
        "--to", dest="new", required=True, metavar="NAME", help="the name of a channel key in API_KEYS (api:<8 hex>)"
    )
    p.add_argument("--actor", required=True, help="who decided the move (a name or staff number): audited")
    p.set_defaults(func=_move)


def _move(args: argparse.Namespace) -> int:
    actor = checked_actor(args.actor, "MOVE_ACTOR")
    import service.schema
    from service.adapters.cli.common import load_settings
    from service.certification.context import ServiceContext
    from service.features.proxy.operators import key_in_force, move_client

    ctx = ServiceContext(load_settings(), schema=service.schema.metadata)
    by = "cli:" + actor
    try:
        with ctx.db() as db:
            to = key_in_force(ctx, args.new)  # its current name, as the accounts will hold it
            moved = move_client(db, ctx, args.old, to, by, {"via": "cli", "os_user": os_user()})
            db.commit()
    finally:
        ctx.engine.dispose()
    emit({"from": args.old, "to": to, "moved": moved})
    return 0
