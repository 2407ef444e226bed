#!/usr/bin/env bash
# Fill the face population cache ($PENSION_CERT_FACES_DIR or ~/.cache/pension-cert/faces) from the pinned
# repository snapshots listed in bench/face_data/manifest.csv (every file checked against its sha256).
# Bring the snapshots first with the `fetch` tool: github:mattans/AgeProgression, github:urielsinger/familyGan,
# github:samirmehd1yev/kinship_detection, github:nz0001na/Asian_faces. See docs/face_data.md.
#   bash scripts/fetch_face_data.sh [--mirror-root /work/.mirror] [--cache DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "error: $PY is missing; run bash scripts/setup.sh first" >&2; exit 1; }
exec "$PY" -m bench.face_data fetch "$@"
