"""Helpers shared by the CLI sub-commands."""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_INPUT = 2
EXIT_MODEL = 3


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def emit(obj: dict[str, Any]) -> None:
    """Write one JSON object as one line on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()
