from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.errors import (
    ModelDownloadError,
    ModelError,
    ModelHashMismatchError,
    ModelMissingError,
    ModelShapeMismatchError,
)
from models.manifest import load_manifest
from models.packs import ModelPack, load_model
from models.recognizers import MobileFaceNetFoamliu
from models.store import ModelStatus, ModelStore


def test_missing_file_error_names_file_hash_and_fetch_command(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    assert store.state("yunet_2023mar").status is ModelStatus.MISSING
    with pytest.raises(ModelMissingError) as info:
        store.path("yunet_2023mar")
    message = str(info.value)
    assert "face_detection_yunet_2023mar.onnx" in message
    assert load_manifest().model("yunet_2023mar").sha256 in message
    assert "pension-cert models fetch" in message


def test_wrong_content_with_right_size_is_a_hash_mismatch(tmp_path: Path, models_dir: Path) -> None:
    spec = load_manifest().model("yunet_2023mar")
    data = bytearray((models_dir / spec.file).read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / spec.file).write_bytes(bytes(data))
    store = ModelStore(tmp_path)
    assert store.state("yunet_2023mar").status is ModelStatus.HASH_MISMATCH
    with pytest.raises(ModelHashMismatchError, match=spec.sha256):
        store.path("yunet_2023mar")


def test_truncated_file_is_a_size_mismatch(tmp_path: Path, models_dir: Path) -> None:
    spec = load_manifest().model("minifasnet_v2")
    (tmp_path / spec.file).write_bytes((models_dir / spec.file).read_bytes()[:5000])
    with pytest.raises(ModelHashMismatchError, match="size"):
        ModelStore(tmp_path).path("minifasnet_v2")


def test_fetch_from_directory_copies_and_verifies(tmp_path: Path, models_dir: Path) -> None:
    store = ModelStore(tmp_path / "models")
    path = store.fetch("mobilefacenet_foamliu", str(models_dir))
    assert path.read_bytes() == (models_dir / path.name).read_bytes()
    assert store.state("mobilefacenet_foamliu").status is ModelStatus.OK


def test_fetch_rejects_a_source_with_the_wrong_bytes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    spec = load_manifest().model("yunet_2023mar")
    (src / spec.file).write_bytes(b"not an onnx model")
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelHashMismatchError):
        store.fetch("yunet_2023mar", str(src))
    assert not (tmp_path / "models" / spec.file).exists()


def test_graph_input_shape_is_checked_against_the_manifest(models_dir: Path) -> None:
    # The foamliu class given another model's file must refuse it, naming both shapes.
    spec = load_manifest().model("mobilefacenet_foamliu")
    with pytest.raises(ModelShapeMismatchError, match="112"):
        MobileFaceNetFoamliu(spec, models_dir / "face_detection_yunet_2023mar.onnx")


def test_insightface_pack_falls_back_to_the_files_present(tmp_path: Path, models_dir: Path) -> None:
    store = ModelStore(models_dir)
    pack = ModelPack(store.manifest.pack("insightface"), store)
    # det_10g and w600k_r50 are not distributed here; the pack uses the SCRFD and w600k files that are.
    assert pack.resolve("detector") == ["scrfd_2_5g"]
    assert pack.resolve("recognizer") == ["w600k_mbf_int8"]
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(models_dir / "det_500m.onnx", partial)
    pstore = ModelStore(partial)
    ppack = ModelPack(pstore.manifest.pack("insightface"), pstore)
    assert ppack.resolve("detector") == ["scrfd_500m"]
    with pytest.raises(ModelMissingError, match=r"w600k_r50\.onnx"):
        _ = ppack.recognizer


def test_batch_one_recognizer_embeds_several_crops_transparently(models_dir: Path) -> None:
    store = ModelStore(models_dir)
    rec = MobileFaceNetFoamliu(store.manifest.model("mobilefacenet_foamliu"), store.path("mobilefacenet_foamliu"))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (112, 112, 3), dtype=np.uint8) for _ in range(3)]
    batch = rec.embed(crops)
    singles = np.vstack([rec.embed([c]) for c in crops])
    assert batch.shape == (3, 128)
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_a_source_that_cannot_be_fetched_says_why_in_words(tmp_path: Path) -> None:
    """A refused connection or an unsupported scheme: a message an operator can act on, no Python repr
    ("<urlopen error [Errno 111] ...>") and nothing written."""
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelDownloadError) as refused:
        store.fetch("yunet_2023mar", "http://127.0.0.1:9/models")  # the discard port: nothing listens
    message = str(refused.value)
    assert "could not fetch from http://127.0.0.1:9/models/" in message and "<" not in message
    assert "refused" in message.lower()
    with pytest.raises(ModelDownloadError, match="only a folder or an http"):
        store.fetch("yunet_2023mar", "ftp://example.org/models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_models_folder_that_is_a_file_is_unreadable_not_a_traceback(tmp_path: Path) -> None:
    """PENSION_CERT_MODELS_DIR naming a file: the stat raised NotADirectoryError out of every check."""
    (tmp_path / "notadir").write_text("x")
    store = ModelStore(tmp_path / "notadir")
    assert store.state("yunet_2023mar").status is ModelStatus.UNREADABLE
    with pytest.raises(ModelError, match=r"face_detection_yunet_2023mar\.onnx is unreadable \(") as info:
        store.path("yunet_2023mar")
    assert "Errno" not in str(info.value)


def test_a_model_file_without_read_permission_is_unreadable(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the service's user may not read (mode 0600 of another user). The tests run as root, who reads any
    file: the denial is simulated by making the file's open raise PermissionError, as the kernel would."""
    spec = load_manifest().model("yunet_2023mar")
    shutil.copy(models_dir / spec.file, tmp_path / spec.file)
    real_open = Path.open

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == spec.file:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", denied)
    assert ModelStore(tmp_path).state("yunet_2023mar").status is ModelStatus.UNREADABLE


def _swap_keeping_size_and_mtime(path: Path) -> None:
    """Change bytes in place (same inode and size) and put the mtime back: the (size, mtime) of the check."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_model_swapped_after_the_start_check_is_refused_on_load(tmp_path: Path, models_dir: Path) -> None:
    """The start check and /readyz cache a good hash under (size, mtime); loading hashes the bytes it runs."""
    spec = load_manifest().model("yunet_2023mar")
    shutil.copy(models_dir / spec.file, tmp_path / spec.file)
    store = ModelStore(tmp_path)
    pack = ModelPack(load_manifest().pack("default"), store)
    assert pack.resolve("detector") == ["yunet_2023mar"] and store.is_available("yunet_2023mar")  # start check
    _swap_keeping_size_and_mtime(tmp_path / spec.file)
    assert store.is_available("yunet_2023mar")  # the cheap status cannot tell
    with pytest.raises(ModelHashMismatchError, match=spec.sha256):
        pack.detector  # noqa: B018


def test_a_model_is_built_from_the_bytes_that_were_hashed(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swapped right after the hash: the session is made from the verified bytes, not by opening the path again."""
    spec = load_manifest().model("yunet_2023mar")
    shutil.copy(models_dir / spec.file, tmp_path / spec.file)
    store = ModelStore(tmp_path)
    verified = store.load_bytes

    def load_then_swap(name: str) -> bytes:
        data = verified(name)
        (tmp_path / spec.file).write_bytes(b"not a model")
        return data

    monkeypatch.setattr(store, "load_bytes", load_then_swap)
    detector = load_model(store, "yunet_2023mar")
    assert detector.version == spec.version and detector.session.get_inputs()[0].name == spec.input_name


def test_the_image_leaves_the_models_to_root() -> None:
    """The runtime user must not own (and so rewrite) its pinned models: no --chown on the copy of /models."""
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text(encoding="utf-8")
    copy = next(line for line in dockerfile.splitlines() if line.startswith("COPY --from=models"))
    assert "--chown" not in copy and "USER app" in dockerfile
