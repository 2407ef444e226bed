#!/usr/bin/env bash
# Installs what the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== ruff" && ruff check .
echo "== mypy" && mypy
# Two worker processes (pytest-xdist): the suite is CPU-bound and every test owns its database, folders and servers,
# so it halves the wall time on a two-core machine; PYTEST_WORKERS=0 runs it in one process.
echo "== pytest" && pytest -q -n "${PYTEST_WORKERS:-2}" "$@"
