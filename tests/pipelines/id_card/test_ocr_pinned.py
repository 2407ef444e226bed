"""The ID-card OCR engine runs only the pinned PP-OCR models (models/ocr_pins.py): a changed copy is refused, even
one swapped after the status check with its size and mtime kept; every decision records their hashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from models import ocr_pins
from pipelines.decision.runner import _ocr_version
from pipelines.id_card.ocr import OcrEngine
from tests.models.test_ocr_pins import _copy, _flip_one_byte


def test_a_changed_ocr_model_is_reported_and_not_loaded(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    rec = ocr_pins.OCR_MODELS["Rec"]
    _flip_one_byte(folder / rec.file)
    problems = ocr_pins.ocr_problems(folder)
    assert len(problems) == 1 and rec.name in problems[0] and "sha256" in problems[0]
    assert "pip install --force-reinstall" in problems[0]
    with pytest.raises(ocr_pins.OcrModelError, match=rec.sha256):
        OcrEngine(models_dir=folder)


def test_an_ocr_model_swapped_after_the_check_is_refused_on_load(tmp_path: Path) -> None:
    """Same size, mtime put back: the status check's (size, mtime) shortcut cannot tell; the load hashes its bytes."""
    folder = _copy(tmp_path)
    assert ocr_pins.ocr_problems(folder) == []
    _flip_one_byte(folder / ocr_pins.OCR_MODELS["Det"].file, keep_mtime=True)
    with pytest.raises(ocr_pins.OcrModelError, match="not the pinned file"):
        OcrEngine(models_dir=folder)


def test_each_decision_records_the_ocr_models_by_their_hash() -> None:
    versions = _ocr_version()
    for section, spec in ocr_pins.OCR_MODELS.items():
        assert versions[f"id_card:ocr_{section.lower()}"] == f"{spec.name}@{spec.sha256[:12]}"
    assert versions["id_card:ocr"] == f"rapidocr_onnxruntime@{ocr_pins.PACKAGE_VERSION}"
