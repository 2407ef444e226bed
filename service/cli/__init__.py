"""`pension-cert` command line. Each sub-command lives in its own module exposing ``register(subparsers)``.

Output is JSON on stdout (one object, or one line per item); failures print a clear message on stderr and
exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from models.errors import ModelError
from pipelines.errors import PipelineError
from service.cli.common import EXIT_INPUT, EXIT_MODEL, CliError

COMMAND_MODULES = (
    "service.cli.models_cmd",
    "service.cli.match_cmd",
    "service.cli.calibrate_cmd",
    "service.cli.id_card_cmd",
    "service.cli.liveness_cmd",
    "service.cli.serve_cmd",
    "service.cli.certify_cmd",
    "service.cli.console_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pension-cert", description="Pension eligibility face certification")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.func(args)
        return code
    except CliError as exc:
        sys.stderr.write(f"pension-cert: {exc}\n")
        return exc.exit_code
    except PipelineError as exc:
        sys.stderr.write(f"pension-cert: {exc.reason.value}: {exc.detail or exc.reason.message_zh}\n")
        return EXIT_INPUT
    except ModelError as exc:
        sys.stderr.write(f"pension-cert: {exc}\n")
        return EXIT_MODEL
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
