#!/usr/bin/env bash
# Installs what the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== ruff" && ruff check .
echo "== mypy" && mypy
echo "== pytest" && pytest -q "$@"
