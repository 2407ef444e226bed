"""How to run a network: pinned model manifest, verified loading, one class per ONNX model.

This package has no domain knowledge; `pipelines/` builds on it.
"""

from models.errors import (
    ModelError,
    ModelHashMismatchError,
    ModelMissingError,
    ModelShapeMismatchError,
    UnknownModelError,
)
from models.manifest import Manifest, ModelSpec, PackSpec, load_manifest
from models.store import ModelStatus, ModelStore, default_models_dir

__all__ = [
    "Manifest",
    "ModelError",
    "ModelHashMismatchError",
    "ModelMissingError",
    "ModelShapeMismatchError",
    "ModelSpec",
    "ModelStatus",
    "ModelStore",
    "PackSpec",
    "UnknownModelError",
    "default_models_dir",
    "load_manifest",
]
