#!/usr/bin/env bash
# Installs the project and runs the main job on embedded defaults: the certification service (SQLite in var/,
# encrypted local media, two worker processes) on http://127.0.0.1:8000 (OpenAPI docs at /docs, staff console at
# /console, mobile pages at /h5/). On the first run it also certifies a sample pensioner against itself over HTTP
# and prints the decision as one JSON line. Stop it with Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
: "${PENSION_CERT_DATA_DIR:?set PENSION_CERT_DATA_DIR to the development data directory}"
VAR_DIR="${PENSION_CERT_VAR_DIR:-var}"
args=(serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}")
if [ ! -f "$VAR_DIR/pension_cert.db" ]; then
  args+=(--demo)
else
  # The sample video was certified on an earlier run; submitting it again is refused as a replay (by design).
  echo "start: using the existing database in $VAR_DIR (remove it to run the sample certification again)" >&2
fi
exec pension-cert "${args[@]}"
