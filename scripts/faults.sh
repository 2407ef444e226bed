#!/usr/bin/env bash
# The fault suite, long variant: worker SIGKILL, Redis and PostgreSQL restarts (repeated, more sessions), full
# media disk. Needs the postgresql and redis-server binaries (scripts/setup.sh) and root for the tmpfs mount
# (the disk-full tests skip with a reason otherwise). The short variant runs in the normal pytest run.
# Extra arguments go to pytest, e.g.  bash scripts/faults.sh -k redis
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python
export PENSION_CERT_FAULTS_LONG=1
export PENSION_CERT_ORT_THREADS="${PENSION_CERT_ORT_THREADS:-1}"
exec "$PY" -m pytest -m faults tests/service/faults -v --durations=0 "$@"
