"""The pinned model manifest (`models/manifest.toml`) as typed, immutable records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from models.errors import UnknownModelError

MANIFEST_PATH = Path(__file__).with_name("manifest.toml")
ROLES = ("detector", "recognizer", "antispoof", "landmarks")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    family: str
    file: str
    sha256: str
    size: int
    licence: str
    commercial_use: bool
    url: str
    input_name: str
    shape: tuple[int, ...]
    colour: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    archive_member: str | None = None
    embedding_dim: int | None = None
    crop_scale: float | None = None

    @property
    def version(self) -> str:
        """Short identifier recorded with every result: name plus the first hash digits."""
        return f"{self.name}@{self.sha256[:12]}"


@dataclass(frozen=True)
class PackSpec:
    name: str
    description: str
    commercial_use: bool
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelSpec]
    packs: dict[str, PackSpec]

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModelError(name) from None

    def pack(self, name: str) -> PackSpec:
        try:
            return self.packs[name]
        except KeyError:
            raise UnknownModelError(name) from None


def _model_spec(name: str, raw: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=str(raw["task"]),
        family=str(raw["family"]),
        file=str(raw["file"]),
        sha256=str(raw["sha256"]).lower(),
        size=int(raw.get("size", 0)),
        licence=str(raw["licence"]),
        commercial_use=bool(raw["commercial_use"]),
        url=str(raw["url"]),
        input_name=str(raw["input_name"]),
        shape=tuple(int(d) for d in raw["shape"]),
        colour=str(raw["colour"]),
        mean=(float(raw["mean"][0]), float(raw["mean"][1]), float(raw["mean"][2])),
        std=(float(raw["std"][0]), float(raw["std"][1]), float(raw["std"][2])),
        archive_member=raw.get("archive_member"),
        embedding_dim=raw.get("embedding_dim"),
        crop_scale=raw.get("crop_scale"),
    )


def parse_manifest(text: str) -> Manifest:
    data = tomllib.loads(text)
    models = {name: _model_spec(name, raw) for name, raw in data.get("models", {}).items()}
    packs: dict[str, PackSpec] = {}
    for name, raw in data.get("packs", {}).items():
        roles = {role: tuple(raw.get(role, ())) for role in ROLES}
        for role, names in roles.items():
            for model_name in names:
                if model_name not in models:
                    raise UnknownModelError(f"{model_name} (pack {name}, role {role})")
        packs[name] = PackSpec(name, str(raw.get("description", "")), bool(raw["commercial_use"]), roles)
    return Manifest(models, packs)


@lru_cache(maxsize=1)
def load_manifest() -> Manifest:
    return parse_manifest(MANIFEST_PATH.read_text(encoding="utf-8"))
