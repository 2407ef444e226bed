"""`pension-cert move-database --to postgresql://…`: move the embedded SQLite database (PENSION_CERT_DATABASE_URL)
to an empty PostgreSQL database migrated to this version, in one transaction, verified table by table before it
commits. docs/operations.md, "Moving from SQLite to PostgreSQL"; the work itself is
service/certification/database_move.py."""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from service.adapters.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_UNAVAILABLE,
    CliError,
    emit,
    os_user,
)

HELP = "move the embedded SQLite database to an empty, migrated PostgreSQL database (the service stopped)"
# The exit code of each kind of refusal (nothing written): a wrong --to, a schema to migrate, the service running.
# The source is the settings' (PENSION_CERT_DATABASE_URL): one that is not SQLite, names no file or an empty one, or
# whose media store (PENSION_CERT_MEDIA_DIR / MEDIA_URL, MEDIA_KEY) is not its own, is a setting (exit 4).
REFUSAL_EXIT = {"input": EXIT_INPUT, "schema": EXIT_CONFIG, "source": EXIT_CONFIG, "busy": EXIT_UNAVAILABLE}
# Query parameters of a URL that carry a secret (libpq's): never shown, as the password before the host is not.
SECRET_KEYS = frozenset({"password", "passfile", "sslpassword"})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("move-database", help=HELP)
    p.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the PostgreSQL database to move to (postgresql+psycopg://user@host/db; the password in PGPASSWORD or "
        "~/.pgpass, not on the command line), empty and migrated with `alembic upgrade head`; the source is "
        "PENSION_CERT_DATABASE_URL",
    )
    p.add_argument("--batch", type=int, default=1000, help="rows read and written at a time (memory bound)")
    p.set_defaults(func=_move)


def _target(url: str) -> tuple[Any, str]:
    """The target's engine and its URL as shown (passwords hidden, in the query too); CliError BAD_TARGET for a URL
    that is not a usable PostgreSQL one (never with a traceback, nor the URL's password)."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from service.infra.db.engine import make_engine

    usage = "postgresql+psycopg://user@host[:port]/db"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # not a URL; a port that is not a number
        raise CliError(
            f"--to is not a database URL (or its port is not a number): {usage}", code="BAD_TARGET"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise CliError(f"--to must name a PostgreSQL database, not {parsed.get_backend_name()}", code="BAD_TARGET")
    shown = shown_url(parsed)
    try:
        return make_engine(url), shown
    except (NoSuchModuleError, ImportError):
        raise CliError(
            f"--to names a PostgreSQL driver this installation does not have ({parsed.get_driver_name()}): {usage}",
            code="BAD_TARGET",
        ) from None


def shown_url(parsed: Any) -> str:
    """A URL as messages and the output show it: the password and libpq's secret query parameters masked."""
    hidden = {k: "***" for k in parsed.query if k.lower() in SECRET_KEYS}
    return str(parsed.update_query_dict(hidden).render_as_string(hide_password=True))


def _move(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    import service.schema
    from service.adapters.cli.common import load_settings, outage_error
    from service.certification.context import ServiceContext
    from service.certification.database_move import MoveFailedError, MoveRefusedError, move, source_refusal
    from service.certification.move_source import media_where

    settings = load_settings()
    if not settings.effective_database_url.startswith("sqlite"):
        raise CliError(
            "the source (PENSION_CERT_DATABASE_URL) must be the embedded SQLite database (nothing was written)",
            REFUSAL_EXIT["source"],
            code="BAD_SOURCE",
        )
    missing = source_refusal(settings.effective_database_url)  # before anything opens it, which would create it
    if missing is not None:
        raise CliError(f"{missing} (nothing was written)", REFUSAL_EXIT[missing.kind], code=missing.code)
    engine, shown = _target(args.to)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        outage = outage_error(exc)
        if outage is None:
            raise
        raise CliError(
            f"the target database {shown} does not answer: {outage.detail}", EXIT_UNAVAILABLE, outage.code
        ) from None
    _check_read_only(settings, engine)
    # Opened as it is (schema=None): the app's start brings an embedded file up to the models (tables, columns,
    # indexes), which would change a source the checks then refuse (database_move.py).
    ctx = ServiceContext(settings, schema=None)
    # A table the target refuses fails inside psycopg's pipeline (batched inserts); closing that connection makes
    # psycopg log "error ignored terminating <psycopg.Pipeline …>" at WARNING, sometimes, by timing. The failure
    # is said once, in words, below: the library's own line would only put its internals before it.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    try:
        report = move(ctx, engine, service.schema.metadata, args.batch, {"os_user": os_user()})
    except MoveRefusedError as exc:
        raise CliError(f"{exc} (nothing was written)", REFUSAL_EXIT[exc.kind], code=exc.code) from None
    except MoveFailedError as exc:
        state = {
            True: "the target was rolled back and holds no row of the service: fix this and run the same command",
            False: "the target still holds rows after the rollback: look at it before running the command again",
            None: "the target's transaction was not committed, so it keeps none of it: run the same command again",
        }[exc.target_empty]
        raise CliError(f"{exc}; {state}", EXIT_UNAVAILABLE if exc.outage else EXIT_FAILED, code=exc.code) from None
    finally:
        engine.dispose()
        ctx.engine.dispose()
    emit(
        {
            "ok": True,
            "to": shown,
            "rows": report.rows,
            "tables": report.tables,
            "sequences": report.sequences,
            "next_event_id": report.next_event_id,
            "media": media_where(settings),  # not moved: the PostgreSQL set-up keeps this store and the same keys
        }
    )
    return 0


def _check_read_only(settings: Any, engine: Any) -> None:
    """The move's checks on the source opened read-only (move_source.read_only): a refused file keeps its bytes,
    journal mode and file mode (a WAL-mode file gains empty -wal and -shm, as from any reader), and no folder is
    made (move_source.CheckContext). Then, before anything is copied, one line on stderr: the media stay
    in the store they are in, with the same keys."""
    import service.schema
    from service.certification.database_move import refusal
    from service.certification.move_source import CheckContext, media_folder_refusal, media_where, read_only

    no_folder = media_folder_refusal(settings)  # before the store is opened, which would make the folder
    if no_folder:
        engine.dispose()
        raise CliError(f"{no_folder} (nothing was written)", REFUSAL_EXIT["source"], code="MEDIA_STORE_MISMATCH")
    checks = CheckContext(settings, read_only(settings.effective_database_url))
    try:
        found = refusal(checks, engine, service.schema.metadata)
    finally:
        checks.engine.dispose()
    if found is not None:
        engine.dispose()
        raise CliError(f"{found} (nothing was written)", REFUSAL_EXIT[found.kind], code=found.code)
    sys.stderr.write(
        f"pension-cert: the media are not moved: they stay in {media_where(settings)}; start the PostgreSQL set-up "
        "with this same store and the same PENSION_CERT_MEDIA_KEY and PENSION_CERT_SIGNING_KEY\n"
    )
    sys.stderr.flush()
