#!/usr/bin/env bash
# Installs what the tests need, then runs lint, type checks and the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "== ruff" && ruff check .
echo "== mypy" && mypy
# Worker processes (pytest-xdist; every test owns its database, folders and servers): one more than the machine's
# cores, as about a third of the suite's time is spent waiting, not computing (browsers recording in real time,
# servers starting, fault tests' deadlines): on two cores three workers took the whole run from 24 to 18 minutes.
# PYTEST_WORKERS=0 runs it in one process. Work stealing: a worker that ran out of tests takes some of another's
# queue, so the run does not end on one worker's tail of slow tests (two cores, one day, idle: 1,544 and 1,615 s
# with it, 1,647 s without: a few per cent at most).
echo "== pytest" && pytest -q -n "${PYTEST_WORKERS:-$(($(nproc) + 1))}" --dist worksteal --durations=20 "$@"
