#!/usr/bin/env bash
# Installs the project and runs the main job on embedded defaults: the certification service (SQLite in var/,
# encrypted local media, two worker processes) on http://127.0.0.1:8000 (OpenAPI docs at /docs, staff console at
# /console/, mobile pages at /h5/). HOST and PORT choose where it listens (HOST=0.0.0.0: every interface, with
# your own PENSION_CERT_* keys: off loopback `serve` refuses the public development defaults).
# On the first run (no database yet) it starts with the demo kit (`serve --demo`: a matching ID card + selfie video
# in var/demo/, its beneficiary imported, the challenge fixed to the video's actions); try it with
# `bash scripts/demo_walkthrough.sh` from another terminal. Stop it with Ctrl-C.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
VAR_DIR="${PENSION_CERT_VAR_DIR:-var}"
args=(serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}")

if [ -z "${PENSION_CERT_MODELS_DIR:-}" ]; then
  # Outside the development layout (no ../shared/models): the pinned model files, downloaded once into
  # ~/.cache/pension-cert/models and sha256-verified (a no-op when they are there already).
  echo "start: no ../shared/models: fetching the pinned models (pension-cert models fetch --pack default)" >&2
  pension-cert models fetch --pack default >/dev/null
fi

if [ -f "$VAR_DIR/pension_cert.db" ]; then
  # The demo kit's video was certified on an earlier run; submitting it again is refused as a replay (by design).
  echo "start: using the existing database in $VAR_DIR (remove it, or set PENSION_CERT_VAR_DIR, for the demo kit)" >&2
elif [ -z "${PENSION_CERT_DATA_DIR:-}" ]; then
  echo "start: no development data (../shared/data) for the demo kit: starting without it (PENSION_CERT_DATA_DIR=DIR to add it)" >&2
else
  args+=(--demo)
fi
exec pension-cert "${args[@]}"
