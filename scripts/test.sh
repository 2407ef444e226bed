#!/usr/bin/env bash
# Installs what the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== ruff" && ruff check .
echo "== mypy" && mypy
# Worker processes (pytest-xdist; every test owns its database, folders and servers): one more than the machine's
# cores, as about a third of the suite's time is spent waiting, not computing (browsers recording in real time,
# servers starting, fault tests' deadlines): on two cores three workers took the whole run from 24 to 18 minutes.
# PYTEST_WORKERS=0 runs it in one process. (Work stealing, `--dist worksteal`, was tried: no shorter run, 1,544 s
# against 1,562 s, and a fifth more test time in all: more slow tests at once at the end, the browsers' timing
# tests among them.)
echo "== pytest" && pytest -q -n "${PYTEST_WORKERS:-$(($(nproc) + 1))}" --durations=20 "$@"
