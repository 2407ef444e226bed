"""`pension-cert cycle-run`: the daily run (suspensions of the overdue, expired sessions, the store's upkeep) once,
now, as the command line (audited `cycle.run`, `cycle.completed` / `cycle.refused` by ``cli:cycle-run``, with the
account). For cron where neither Celery beat nor the embedded service's daily thread runs it (WORKER_MODE=none,
CYCLE_RUN_HOUR=-1); the work itself is service/certification/daily_run.py. docs/operations.md, "The daily run"."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import datetime as dt

from service.adapters.cli.common import EXIT_FAILED, CliError, emit, os_user

HELP = "run the daily cycle now: suspend the overdue, expire sessions, purge media past retention"
CLI_ACTOR = "cli:cycle-run"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cycle-run", help=HELP)
    p.add_argument(
        "--force", action="store_true", help="run even when an unusual share would be suspended (after checking)"
    )
    p.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="a simulated date: PENSION_CERT_ENV=development or test only",
    )
    p.set_defaults(func=_cycle_run)


def _cycle_run(args: argparse.Namespace) -> int:
    import service.schema
    from service.adapters.cli.common import load_settings
    from service.certification.context import ServiceContext
    from service.certification.cycle import CycleSpikeError
    from service.certification.daily_run import daily_run
    from service.features.install import install_features

    # The features' daily upkeep (closed assist requests' phone numbers, pending proxy bindings) runs with the
    # store's: a context without them would skip it silently (ctx.hooks.daily_upkeep runs what is registered).
    ctx = install_features(ServiceContext(load_settings(), schema=service.schema.metadata))
    try:
        run = daily_run(ctx, CLI_ACTOR, args.today, args.force, {"os_user": os_user()})
    except CycleSpikeError as exc:
        # The run was refused (audited, nothing changed): the check failed, exit 1; the message says what to do.
        why = f"the run would suspend {exc.suspending} of {exc.active} active beneficiaries; nothing was changed"
        raise CliError(f"{why}; check, then run again with --force", EXIT_FAILED, code=exc.code) from exc
    finally:
        ctx.engine.dispose()
    emit(
        {
            "date": run.date.isoformat(),
            "suspended": run.suspended,
            "sessions_expired": run.sessions_expired,
            "media_purged": run.media_purged,
            "media_orphans_removed": run.media_orphans_removed,
            "forced": run.forced,
        }
    )
    return 0
