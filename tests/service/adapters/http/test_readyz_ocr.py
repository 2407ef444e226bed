"""/readyz's `models` check covers the ID-card OCR models inside their package (pipelines/id_card/ocr_pins.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models import ocr_pins
from tests.models.test_ocr_pins import _copy, _flip_one_byte
from tests.service.adapters.http.ops import ops_app


def test_a_changed_ocr_model_makes_the_service_unready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy(tmp_path)
    app = TestClient(ops_app(tmp_path, worker_mode="thread"))
    monkeypatch.setattr(ocr_pins, "package_models_dir", lambda: folder)
    assert app.get("/readyz").json()["checks"]["models"] == {"ok": True}
    _flip_one_byte(folder / ocr_pins.OCR_MODELS["Det"].file)
    r = app.get("/readyz")
    assert r.status_code == 503 and "models" in r.json()["failing"]
