"""The ID-card OCR models inside the rapidocr-onnxruntime package, pinned by sha256 (models/ocr_pins.py): the
status the start check and /readyz report. Tampered copies only (site-packages is never touched)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from models import ocr_pins


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "ocr"
    folder.mkdir()
    for spec in ocr_pins.OCR_MODELS.values():
        shutil.copy(ocr_pins.package_models_dir() / spec.file, folder / spec.file)
    return folder


def _flip_one_byte(path: Path, keep_mtime: bool = False) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_the_pins_are_the_installed_packages_files() -> None:
    assert ocr_pins.ocr_problems() == []


def test_a_missing_ocr_model_is_reported(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / ocr_pins.OCR_MODELS["Cls"].file).unlink()
    assert ["missing" in line for line in ocr_pins.ocr_problems(folder)] == [True]
