"""`pension-cert` command line. Each sub-command lives in its own module exposing ``register(subparsers)``.

Output is JSON on stdout (one object, or one line per item); failures print a clear message on stderr and
exit non-zero (one meaning per code: ``service.adapters.cli.common.EXIT_CODES``), never a traceback.

Building the parser imports no model runtime (onnxruntime, insightface, OpenCV) and not the service app:
``--help``, ``models list``, ``console …`` and every usage error answer at once. Each command imports what it
runs inside its handler (tests/service/adapters/cli/test_cli_imports.py holds this).
"""

# lazy-imports: each command imports what it runs inside its handler, so --help, `models list` and usage errors
# answer without loading the model runtime or the app (tests/service/adapters/cli/test_cli_imports.py).
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from models.errors import ModelError, UnknownModelError  # light: the models package imports no runtime at import
from pipelines.errors import PipelineError
from service.adapters.cli.common import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_MODEL,
    CliError,
    as_cli_error,
    outage_error,
)
from service.certification.errors import ServiceError

# Every command: (its module, its one-line help). `pension-cert --help` is built from this table alone; a
# command's own module (and what it imports) loads only when that command is run or asked for its --help.
# tests/service/adapters/cli/test_cli_imports.py checks that each module registers these names with this help.
COMMANDS: dict[str, tuple[str, str]] = {
    "models": ("service.adapters.cli.models_cmd", "list or fetch the pinned model files"),
    "match": ("service.adapters.cli.match_cmd", "face similarity of two images, or of the pairs in a CSV"),
    "calibrate-faces": (
        "service.adapters.cli.calibrate_cmd",
        "calibrate face-match thresholds (LFW pairs and/or population data)",
    ),
    "id-card": ("service.adapters.cli.id_card_cmd", "read resident ID-card photos"),
    "liveness": ("service.adapters.cli.liveness_cmd", "liveness check of a selfie video (passive + action challenge)"),
    "calibrate-liveness": ("service.adapters.cli.liveness_cmd", "calibrate the passive anti-spoofing threshold"),
    "serve": ("service.adapters.cli.serve_cmd", "run the HTTP API (OpenAPI docs at /docs) with its worker"),
    "worker": ("service.adapters.cli.serve_cmd", "process queued certification sessions (polls the database)"),
    "certify": ("service.adapters.cli.certify_cmd", "ID card + selfie video → accept / review / reject (offline)"),
    "console": ("service.adapters.cli.console_cmd", "staff console administration"),
    "cycle-run": (
        "service.adapters.cli.cycle_cmd",
        "run the daily cycle now: suspend the overdue, expire sessions, purge media past retention",
    ),
    "rekey": (
        "service.adapters.cli.rekey_cmd",
        "re-seal fields and media with the current media key, re-hash look-ups with the current signing key",
    ),
    "move-database": (
        "service.adapters.cli.move_cmd",
        "move the embedded SQLite database to an empty, migrated PostgreSQL database (the service stopped)",
    ),
    "revoke": (
        "service.adapters.cli.revoke_cmd",
        "revoke a certification found fraudulent (by id, session, or person and day), as --actor",
    ),
    "move-relatives": (
        "service.adapters.cli.relatives_cmd",
        "move the relatives' accounts a replaced channel key made to the key that replaced it, as --actor",
    ),
}
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _help in COMMANDS.values()))


# `pension-cert --help`'s last lines: where a new operator starts (README, "The first hour") and what each exit
# code means, for whoever writes a cron job or a script around a command.
_EPILOG = (
    "first steps: pension-cert serve (the service on http://127.0.0.1:8000; `--demo` with the demo kit), then\n"
    "  pension-cert console create-user --username admin --role admin (the first staff account, /console/)\n"
    "exit codes:\n" + "\n".join(f"  {code} {meaning}" for code, meaning in EXIT_CODES.items())
)


def _wanted(argv: Sequence[str]) -> str | None:
    """The command the arguments name (the first word that is not an option), if any."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. With ``argv``, only the module of the command it names is imported (the others get a
    placeholder with their help line); without, every command's full parser (docs checks, completion)."""
    parser = argparse.ArgumentParser(
        prog="pension-cert",
        description="Pension eligibility face certification",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log progress to stderr; liveness/certify JSON also carries the per-frame hashes (~3 KB)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    if argv is None:
        for module in COMMAND_MODULES:
            importlib.import_module(module).register(sub)
        return parser
    wanted = _wanted(argv)
    if wanted in COMMANDS:
        # Its module first: it may register siblings too (liveness + calibrate-liveness, serve + worker), which
        # then must not stand there as placeholders already.
        importlib.import_module(COMMANDS[wanted][0]).register(sub)
    for name, (_module, help_line) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_line)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words).parse_args(words)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # ID numbers masked in every command's log lines (cron mails them), as the server and the workers do.
    from service.infra.observability.logs import install_log_masking  # lazy: reads settings; --help must not

    install_log_masking()
    try:
        code: int = args.func(args)
        return code
    except (CliError, ServiceError) as exc:
        error = exc if isinstance(exc, CliError) else as_cli_error(exc)  # a domain refusal: its code, exit 2
        sys.stderr.write(f"pension-cert: {error}\n")
        return error.exit_code
    except PipelineError as exc:
        sys.stderr.write(f"pension-cert: {exc.reason.value}: {exc.detail or exc.reason.message_zh}\n")
        return EXIT_INPUT
    except UnknownModelError as exc:  # a name the operator typed (or set) that no manifest entry has: usage
        sys.stderr.write(f"pension-cert: {exc}\n")
        return EXIT_INPUT
    except ModelError as exc:
        sys.stderr.write(f"pension-cert: {exc}\n")
        return EXIT_MODEL
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ValueError, RuntimeError) as exc:  # pydantic errors, a bad base64 key, InsecureSettingsError
        # A command that read the settings itself (get_settings) rather than through load_settings: a bad
        # variable is still one line per problem and the configuration exit code, not a traceback.
        problems = _settings_problems_behind(exc)
        if not problems:
            raise
        sys.stderr.write("pension-cert: CONFIG_INVALID: invalid settings:\n  " + "\n  ".join(problems) + "\n")
        return EXIT_CONFIG
    except Exception as exc:  # the database or the media store down: one line and exit 5, not a traceback (exit 1)
        outage = outage_error(exc)
        if outage is None:
            raise
        sys.stderr.write(f"pension-cert: {outage}\n")
        return outage.exit_code


def _settings_problems_behind(exc: Exception) -> list[str]:
    """The settings problems, when ``exc`` came from reading the settings (pydantic, a bad media key, a refused
    default); empty when the settings are fine (the error is something else)."""
    if "service.infra.config" not in sys.modules:
        return []
    from service.adapters.cli.common import settings_problems

    try:
        return settings_problems()[1]
    except Exception:  # the original error is the one to show
        return []


if __name__ == "__main__":
    sys.exit(main())
