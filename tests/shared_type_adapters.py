"""Test-suite speed: one pydantic TypeAdapter per distinct route field, shared by every app the suite builds.

FastAPI (0.165) builds an included router's route fields (parameters, bodies, response models: one pydantic
TypeAdapter each, about 2,000 for this service) again for every app, on that app's first request. The suite builds
about 1,500 apps from the same routes, so that rebuild took roughly 0.4 s of CPU per app, a sixth of the suite's time.

A field's TypeAdapter is a function of its annotation, its metadata and its FieldInfo attributes only
(fastapi/_compat/v2.py ModelField.__post_init__), so fields whose three are equal (and of equal types: 0 and False
are equal in Python, not as defaults) can share one. A field with a value that cannot be hashed, or with a config
of its own, is built as FastAPI builds it. The production service builds one app per process and is not changed.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_ADAPTERS: dict[tuple[Any, ...], Any] = {}


def _typed(value: Any) -> tuple[type, Any]:
    return type(value), value


def field_key(model_field: Any, asdict: Any) -> tuple[Any, ...] | None:
    """What the field's TypeAdapter is built from, or None where that cannot be a dictionary key."""
    if model_field.config is not None:
        return None
    parts = asdict(model_field.field_info)
    attributes = tuple(sorted((name, *_typed(value)) for name, value in parts["attributes"].items()))
    key = (parts["annotation"], tuple(_typed(m) for m in parts["metadata"]), attributes, model_field.mode)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _share_signatures() -> None:
    """FastAPI reads each endpoint's and dependency's typed signature again for every app (evaluating its string
    annotations); a function's signature does not change, so it is read once per callable."""
    from fastapi.dependencies import utils

    read = utils.get_typed_signature
    if getattr(read, "shared", False):
        return
    signatures: dict[Any, Any] = {}

    def typed_signature(call: Any) -> Any:
        try:
            return signatures[call]
        except KeyError:
            signature = signatures[call] = read(call)
            return signature
        except TypeError:  # an unhashable callable
            return read(call)

    typed_signature.shared = True  # type: ignore[attr-defined]
    utils.get_typed_signature = typed_signature


def install() -> bool:
    """Share TypeAdapters between equal route fields; False (and the suite runs unchanged, only slower) where this
    FastAPI's ModelField is not the one described above."""
    try:
        from fastapi._compat import v2
    except ImportError:
        log.warning("fastapi._compat.v2 is gone: route fields are built per app")
        return False
    model_field = getattr(v2, "ModelField", None)
    asdict = getattr(v2, "asdict", None)
    if model_field is None or asdict is None or getattr(model_field.__post_init__, "shared", False):
        return getattr(getattr(model_field, "__post_init__", None), "shared", False)
    build = model_field.__post_init__
    _share_signatures()

    def post_init(self: Any) -> None:
        key = field_key(self, asdict)
        if key is None:
            build(self)
            return
        adapter = _ADAPTERS.get(key)
        if adapter is None:
            build(self)
            _ADAPTERS[key] = self._type_adapter
        else:
            self._type_adapter = adapter

    post_init.shared = True  # type: ignore[attr-defined]
    model_field.__post_init__ = post_init
    return True
