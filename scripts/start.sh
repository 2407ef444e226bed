#!/usr/bin/env bash
# Installs the project and runs the main job on embedded defaults: for now a face match of sample images.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
DATA="${PENSION_CERT_DATA_DIR:?set PENSION_CERT_DATA_DIR to the development data directory}"
echo "== same person" >&2
pension-cert match "$DATA/faces/lfw/Colin_Powell/Colin_Powell_0001.jpg" "$DATA/faces/lfw/Colin_Powell/Colin_Powell_0048.jpg"
echo "== different people" >&2
pension-cert match "$DATA/faces/lfw/Colin_Powell/Colin_Powell_0001.jpg" "$DATA/faces/lfw/Zhu_Rongji/Zhu_Rongji_0001.jpg"
