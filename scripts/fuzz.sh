#!/usr/bin/env bash
# Coverage-guided fuzzing with atheris (libFuzzer): scripts/fuzz.sh <target> [seconds]
# Targets: video_intake, image_intake, roster_import, idnumber (fuzz/<target>.py). Default 60 s.
# The corpus and any crash inputs are kept in ${PENSION_CERT_FUZZ_DIR:-var/fuzz}/<target>; a crash input is
# written as crash-<sha1> in the current directory and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh video_intake|image_intake|roster_import|idnumber [seconds]}
seconds=${2:-60}
[ -f "fuzz/$target.py" ] || { echo "unknown target $target" >&2; exit 2; }
data=${PENSION_CERT_DATA_DIR:-../shared/data}
corpus=${PENSION_CERT_FUZZ_DIR:-var/fuzz}/$target
mkdir -p "$corpus"
max_len=65536
# Seeds: real files from the shared data set (small ones: libFuzzer mutates them byte by byte).
if [ -z "$(ls -A "$corpus")" ]; then
  case $target in
    video_intake)
      max_len=1048576
      .venv/bin/python - "$data" "$corpus" <<'PY'
import sys
from pathlib import Path
import numpy as np
from fuzz.bombs import webm
from tests.pipelines.liveness.videos import fit, read_frames, write_video
data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
frames = fit(read_frames(data / "videos/liveportrait_source_s18.mp4", end_s=2.0, side=160), 128, 128)
write_video(corpus / "seed.mp4", frames, fps=10)
write_video(corpus / "seed.webm", frames, fps=10, codec="libvpx")
(corpus / "grey.webm").write_bytes(webm(128, 128, frames=16))
PY
      ;;
    image_intake)
      find "$data/faces/deepface" -name '*.jpg' -size -20k | head -5 | xargs -r cp -t "$corpus"
      .venv/bin/python -c "
import sys; from PIL import Image; im = Image.open(sys.argv[1]).resize((64, 64))
for f in ('PNG', 'WEBP', 'BMP'): im.save(sys.argv[2] + '/seed.' + f.lower(), f)" \
        "$(find "$data/faces/deepface" -name '*.jpg' | head -1)" "$corpus"
      ;;
    roster_import)
      .venv/bin/python - "$data" "$corpus" <<'PY'
import sys
from pathlib import Path
from tests.service.test_roster import card_rows, to_csv
from tests.service.test_roster_fuzz import to_xlsx
data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
rows = card_rows(data, 4)
(corpus / "seed_csv").write_bytes(b"c" + to_csv(rows))
(corpus / "seed_xlsx").write_bytes(b"x" + to_xlsx(list(rows)))
PY
      ;;
    idnumber)
      printf '370102195003140123' > "$corpus/seed1"; printf '11010119491001001X' > "$corpus/seed2" ;;
  esac
fi
case $target in video_intake) max_len=1048576 ;; roster_import) max_len=262144 ;; esac
export PENSION_CERT_ORT_THREADS=${PENSION_CERT_ORT_THREADS:-1}
exec .venv/bin/python -m "fuzz.$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 \
  -rss_limit_mb=3072 -print_final_stats=1 "$corpus"
