"""Locate the free fonts the synthetic-card generator renders with (installed by scripts/setup.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipelines.errors import PipelineError
from pipelines.reasons import ReasonCode

CJK_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)
# OCR-B (fonts-ocr-b) is the typeface of the printed number; DejaVu Sans Mono is a fallback with the same metrics role.
NUMBER_CANDIDATES = (
    "/usr/share/fonts/opentype/ocr-b/OCRB.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
)


def _find(candidates: tuple[str, ...], pattern: str) -> Path:
    for c in candidates:
        if Path(c).is_file():
            return Path(c)
    if shutil.which("fc-match"):
        out = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, check=False)
        if out.returncode == 0 and Path(out.stdout).is_file():
            return Path(out.stdout)
    raise PipelineError(ReasonCode.MODEL_UNAVAILABLE, f"font {pattern!r} not installed: run scripts/setup.sh")


def cjk_font_path() -> Path:
    return _find(CJK_CANDIDATES, "Noto Sans CJK SC")


def number_font_path() -> Path:
    return _find(NUMBER_CANDIDATES, "OCR B")
