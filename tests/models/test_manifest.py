from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import UnknownModelError
from models.manifest import ROLES, load_manifest, parse_manifest
from models.store import sha256_file


def test_every_shared_model_file_is_pinned_with_its_real_hash_and_size(models_dir: Path) -> None:
    manifest = load_manifest()
    pinned = {spec.file: spec for spec in manifest.models.values()}
    shared = sorted(p for p in models_dir.glob("*.onnx"))
    assert shared, "no model files in the shared models directory"
    for path in shared:
        spec = pinned.get(path.name)
        assert spec is not None, f"{path.name} is not in models/manifest.toml"
        assert spec.sha256 == sha256_file(path)
        assert spec.size == path.stat().st_size


def test_packs_reference_known_models_and_declare_licences() -> None:
    manifest = load_manifest()
    assert set(manifest.packs) >= {"default", "insightface"}
    default = manifest.pack("default")
    assert default.commercial_use
    for role in ROLES:
        for name in default.roles[role]:
            assert manifest.model(name).commercial_use, f"default pack uses non-commercial {name}"
    insight = manifest.pack("insightface")
    assert not insight.commercial_use
    assert "w600k_mbf_int8" in insight.roles["recognizer"]
    assert insight.roles["detector"][0] == "scrfd_10g"
    assert "non-commercial" in manifest.model("w600k_mbf_int8").licence


def test_every_model_has_url_shape_and_preprocessing() -> None:
    for spec in load_manifest().models.values():
        assert spec.url.startswith("https://")
        assert len(spec.sha256) == 64
        assert len(spec.shape) == 4 and spec.shape[1] == 3
        assert spec.colour in {"RGB", "BGR"}
        assert all(s > 0 for s in spec.std)


def test_pack_naming_an_unknown_model_is_rejected() -> None:
    text = """
[models.a]
task = "detection"
family = "yunet"
file = "a.onnx"
sha256 = "00"
licence = "x"
commercial_use = true
url = "https://example.invalid/a.onnx"
input_name = "input"
shape = [1, 3, 8, 8]
colour = "BGR"
mean = [0, 0, 0]
std = [1, 1, 1]

[packs.p]
commercial_use = true
detector = ["a", "missing_model"]
"""
    with pytest.raises(UnknownModelError, match="missing_model"):
        parse_manifest(text)


def test_unknown_model_name_raises_clear_error() -> None:
    with pytest.raises(UnknownModelError, match="no_such_model"):
        load_manifest().model("no_such_model")
