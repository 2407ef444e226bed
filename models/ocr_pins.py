"""The PP-OCR models the ID-card stage runs, shipped inside the ``rapidocr-onnxruntime`` wheel, pinned by sha256.

The package's version does not pin its bytes: an index or mirror can serve other bytes under the same version,
and site-packages can change later; a rec model whose character table swaps two digits reads another ID number.
So the three files are pinned here (the one home of their hashes) and checked as the face models are
(models/store.py): the start check (`serve`, workers) and /readyz by their status, the engine
(pipelines/id_card/ocr.py, OcrEngine) from the bytes it has just hashed. Each decision records their versions
(name@sha256[:12]).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from models.errors import ModelError, ModelHashMismatchError, ModelMissingError
from models.manifest import Manifest, ModelSpec
from models.store import ModelStatus, ModelStore

PACKAGE = "rapidocr-onnxruntime"
# constraints.txt pins this version; the hashes below are its wheel's files. Another version needs its own here.
PACKAGE_VERSION = "1.4.4"
REINSTALL = f"reinstall the pinned package: pip install --force-reinstall --no-deps {PACKAGE}=={PACKAGE_VERSION}"


def _spec(name: str, file: str, sha256: str, size: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        task="ocr",
        family="ppocr",
        file=file,
        sha256=sha256,
        size=size,
        licence=f"Apache-2.0 (PaddleOCR, in {PACKAGE} {PACKAGE_VERSION})",
        commercial_use=True,
        url="",  # never fetched: it comes with the package
        input_name="x",
        shape=(-1, 3, -1, -1),
        colour="BGR",
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )


# Section of rapidocr's config.yaml → the pinned file it names.
OCR_MODELS: dict[str, ModelSpec] = {
    "Det": _spec(
        "ppocrv4_det",
        "ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        4745517,
    ),
    "Rec": _spec(
        "ppocrv4_rec",
        "ch_PP-OCRv4_rec_infer.onnx",
        "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
        10857958,
    ),
    "Cls": _spec(
        "ppocr_mobile_v2_cls",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
        585532,
    ),
}
_MANIFEST = Manifest(models={s.name: s for s in OCR_MODELS.values()}, packs={})


class OcrModelError(ModelError):
    """An OCR model of the package is missing or is not the pinned file: the engine is not built."""

    code = "MODEL_UNAVAILABLE"


def package_models_dir() -> Path:
    """The package's models folder, found without importing it (its import loads OpenCV and its own config)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise OcrModelError(f"the ID-card OCR package {PACKAGE} is not installed: {REINSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


_STORES: dict[Path, ModelStore] = {}
_LOCK = threading.Lock()


def ocr_store(models_dir: Path | None = None) -> ModelStore:
    """One store per folder for the process: its status remembers the hashes it has checked (as load_pack's)."""
    folder = models_dir or package_models_dir()
    with _LOCK:
        return _STORES.setdefault(folder, ModelStore(folder, _MANIFEST))


def ocr_problems(models_dir: Path | None = None) -> list[str]:
    """Why the ID-card OCR cannot run here, one line per model (empty: it can): the start check's and /readyz's."""
    try:
        store = ocr_store(models_dir)
    except OcrModelError as exc:
        return [str(exc)]
    problems = []
    for spec in OCR_MODELS.values():
        st = store.state(spec.name)
        if st.status is not ModelStatus.OK:
            problems.append(f"id_card ocr: {spec.name} is {st.status.in_words} ({st.path}); {REINSTALL}")
    return problems


def verified_bytes(models_dir: Path | None = None) -> dict[str, bytes]:
    """Section → the model's bytes, each read once and hashed: what the engine's sessions are built from."""
    store = ocr_store(models_dir)
    out: dict[str, bytes] = {}
    for section, spec in OCR_MODELS.items():
        try:
            out[section] = store.load_bytes(spec.name)
        except ModelMissingError:
            raise OcrModelError(f"id_card ocr: {spec.name} is missing ({store.models_dir}); {REINSTALL}") from None
        except ModelHashMismatchError as exc:
            why = f"{spec.name} is not the pinned file ({exc.path}: expected {exc.expected}, found {exc.actual})"
            raise OcrModelError(f"id_card ocr: {why}; {REINSTALL}") from None
        except ModelError:
            raise OcrModelError(f"id_card ocr: {spec.name} is unreadable ({store.models_dir}); {REINSTALL}") from None
    return out


def ocr_versions() -> dict[str, str]:
    """What each decision records of the OCR models it ran: name@sha256[:12], as the face models."""
    return {f"id_card:ocr_{section.lower()}": spec.version for section, spec in OCR_MODELS.items()}
