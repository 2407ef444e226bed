#!/usr/bin/env bash
# Fill the liveness development cache ($PENSION_CERT_LIVENESS_DIR or ~/.cache/pension-cert/liveness) from the
# pinned repository snapshots listed in bench/liveness_data/manifest.csv. See docs/liveness_data.md.
#   bash scripts/fetch_liveness_data.sh [--mirror-root /work/.mirror] [--cache DIR] [--limit-per-source N]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "error: $PY is missing; run bash scripts/setup.sh first" >&2; exit 1; }
exec "$PY" -m bench.liveness_data fetch "$@"
