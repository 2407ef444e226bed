"""Model packs: the set of models one deployment uses, chosen by configuration.

``load_pack("default")`` returns a :class:`ModelPack` whose models are created lazily, once per process
(a Celery worker or the CLI loads each model a single time). The pack is chosen by the argument, else by
``PENSION_CERT_MODEL_PACK``, else ``default``.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from models.errors import ModelError, ModelMissingError
from models.manifest import ModelSpec, PackSpec
from models.store import ModelStore

log = logging.getLogger(__name__)

ENV_PACK = "PENSION_CERT_MODEL_PACK"

# family → "module:Class"; classes take (spec, path). Imported on first use so that a pack only pays
# for the code of the models it uses.
FAMILY_CLASSES: dict[str, str] = {
    "yunet": "models.detectors:YuNetDetector",
    "scrfd": "models.detectors:SCRFDDetector",
    "mobilefacenet_foamliu": "models.recognizers:MobileFaceNetFoamliu",
    "arcface": "models.recognizers:ArcFaceRecognizer",
    "minifasnet": "models.antispoof:MiniFASNet",
    "antispoof_celeba_bin": "models.antispoof:CelebASpoofBinary",
    "suri_minifas": "models.antispoof:SuriMiniFAS",
    "mediapipe_facemesh": "models.landmarks:MediaPipeFaceMesh",
}


def pack_name_from_env() -> str:
    return os.environ.get(ENV_PACK, "default")


def instantiate(spec: ModelSpec, path: Path, data: bytes) -> Any:
    """The model of `spec` built from `data`, the file's verified bytes (`path` only names it in messages)."""
    target = FAMILY_CLASSES.get(spec.family)
    if target is None:
        raise ModelError(f"model {spec.name!r}: family {spec.family!r} has no implementation in this version")
    from models.runtime import create_session  # lazy: onnxruntime only once a model is loaded

    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(spec, path, create_session(data))


def load_model(store: ModelStore, name: str) -> Any:
    """A model of the store, its session built from the bytes the store has just hashed (one read), so a file
    swapped after a start or readiness check, even with the same size and mtime, never runs as the pinned one."""
    spec = store.manifest.model(name)
    return instantiate(spec, store.models_dir / spec.file, store.load_bytes(name))


class ModelPack:
    """The models of one pack, created lazily and verified against the manifest."""

    def __init__(self, spec: PackSpec, store: ModelStore) -> None:
        self.spec = spec
        self.store = store
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    def resolve(self, role: str) -> list[str]:
        """Names of the model(s) this pack uses for a role, given which files are present."""
        candidates = self.spec.roles.get(role, ())
        if not candidates:
            return []
        if role == "antispoof":
            return list(candidates)
        for name in candidates:
            if self.store.is_available(name):
                return [name]
        # None present: loading the most preferred one raises the error naming its file and fetch command.
        return [candidates[0]]

    def _load(self, role: str) -> list[Any]:
        names = self.resolve(role)
        if not names:
            raise ModelMissingError(f"{self.name}:{role}", "(no model configured)", "-")
        with self._lock:
            models = [load_model(self.store, n) for n in names]
        log.info("pack %s: %s → %s", self.name, role, ", ".join(m.version for m in models))
        return models

    @cached_property
    def detector(self) -> Any:
        return self._load("detector")[0]

    @cached_property
    def recognizer(self) -> Any:
        return self._load("recognizer")[0]

    @cached_property
    def antispoof(self) -> list[Any]:
        return self._load("antispoof")

    @cached_property
    def landmarks(self) -> Any:
        return self._load("landmarks")[0]

    def versions(self, roles: tuple[str, ...] = ("detector", "recognizer")) -> dict[str, str]:
        out: dict[str, str] = {}
        for role in roles:
            for n in self.resolve(role):
                out[f"{role}:{n}" if role == "antispoof" else role] = self.store.manifest.model(n).version
        return out


_PACKS: dict[tuple[str, str], ModelPack] = {}
_PACKS_LOCK = threading.Lock()


def load_pack(name: str | None = None, store: ModelStore | None = None) -> ModelPack:
    """The process-wide pack for (name, models directory)."""
    store = store or ModelStore()
    pack_name = name or pack_name_from_env()
    key = (pack_name, str(store.models_dir))
    with _PACKS_LOCK:
        if key not in _PACKS:
            _PACKS[key] = ModelPack(store.manifest.pack(pack_name), store)
        return _PACKS[key]
