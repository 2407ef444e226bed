#!/usr/bin/env bash
# Dependency audit: every package installed in .venv against the PyPI vulnerability service (pip-audit).
# Writes bench/results/audit.json; exit 1 when a known vulnerability is not in the allowlist
# (scripts/audit-allowlist.txt: "<vulnerability id> <package> <reason>", one a line, # comments), exit 2 when
# none is known but some installed versions could not be audited (see scripts/audit_report.py).
# Needs network access to pypi.org (OSV is not reachable from the build machines), hence not part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/results/audit.json
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
# pip-audit exits 1 when it finds anything; the allowlist decides below, so its status is not used here.
.venv/bin/pip-audit --vulnerability-service pypi --format json --skip-editable --progress-spinner off \
  --desc on --aliases on --output "$RAW" || true
.venv/bin/python scripts/audit_report.py "$RAW" "$OUT" scripts/audit-allowlist.txt
