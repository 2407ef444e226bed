"""Write the demo kit (a matching ID card + selfie video, and a one-row roster) without starting the service.

    .venv/bin/python scripts/demo_kit.py [--out var/demo]

Needs the development data (PENSION_CERT_DATA_DIR, else ../shared/data). Prints the kit as one JSON object.
`pension-cert serve --demo` writes the same kit to PENSION_CERT_VAR_DIR/demo itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from service.adapters.cli.demo import data_dir_or_none, write_kit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("var/demo"), help="kit folder (default var/demo)")
    args = parser.parse_args()
    data_dir = data_dir_or_none()
    if data_dir is None:
        sys.stderr.write("demo_kit: the development data is missing: set PENSION_CERT_DATA_DIR (../shared/data)\n")
        return 2
    sys.stdout.write(json.dumps(asdict(write_kit(data_dir, args.out)), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
