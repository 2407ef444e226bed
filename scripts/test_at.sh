#!/usr/bin/env bash
# Runs the tests as if the wall clock read HH:MM UTC today: `scripts/test_at.sh 15:40 [pytest args]`.
# The service dates everything by the bureau's calendar (Asia/Shanghai: its day starts at 16:00 UTC) while a test
# may compute dates from the machine's clock; such a test passes most of the day and fails CI in one window of
# hours (twice so far: 15:00-16:00 and 16:00-24:00 UTC). Run the suite at the edges (15:40, 23:40, 12:40, 07:40)
# before a release. Every process the tests start (PostgreSQL, Redis, Chromium, the CLI) gets the same clock.
# Files' modified times still come from the kernel's clock, which this cannot move: a test of a file's age sets
# every age it relies on from the process clock (tests/service/factories.py `aged`, `aged_media`), as
# test_orphan_sweep.py and test_restore.py's kept-media tests do; one that leaves a write's time to the kernel
# fails here at any shift of more than the orphan grace.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
at="${1:?usage: scripts/test_at.sh HH:MM [pytest args]}"
shift
source "$here/setup.sh"
lib="${XDG_CACHE_HOME:-$HOME/.cache}/pension-cert/shift_clock.so"
if [[ ! -f "$lib" || "$here/shift_clock.c" -nt "$lib" ]]; then
    mkdir -p "$(dirname "$lib")"
    cc -shared -fPIC -O2 -o "$lib" "$here/shift_clock.c" -ldl
fi
now=$(date -u +%s)
target=$(date -u -d "$(date -u +%F) $at" +%s)
export SHIFT_CLOCK_OFFSET_S=$((target - now))
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
echo "== pytest at $(date -u '+%F %H:%M') UTC (clock moved ${SHIFT_CLOCK_OFFSET_S} s)"
pytest -q -n "${PYTEST_WORKERS:-$(($(nproc) + 1))}" "$@"
