"""Exceptions of the models package. Each message names the file and how to get it."""

from __future__ import annotations

FETCH_HINT = (
    "Get it with `pension-cert models fetch --from DIR_OR_URL` or point PENSION_CERT_MODELS_DIR "
    "at a directory holding the pinned files (for development: ../shared/models)."
)


class ModelError(Exception):
    """Base class: a model cannot be used."""


class UnknownModelError(ModelError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model or pack {name!r}: not in models/manifest.toml")
        self.name = name


class ModelMissingError(ModelError):
    def __init__(self, name: str, path: str, sha256: str) -> None:
        super().__init__(f"model {name!r}: file {path} is missing (expected sha256 {sha256}). {FETCH_HINT}")
        self.name = name
        self.path = path
        self.sha256 = sha256


class ModelDownloadError(ModelError):
    """A model could not be fetched from where it was asked for: an unreachable or refusing server, or a source
    that is neither a folder nor an http(s) or file URL. The message says which, without Python internals."""

    def __init__(self, name: str, source: str, reason: str) -> None:
        super().__init__(f"model {name!r}: could not fetch from {source}: {reason}. {FETCH_HINT}")
        self.name = name
        self.source = source


class ModelHashMismatchError(ModelError):
    def __init__(self, name: str, path: str, expected: str, actual: str, what: str = "sha256") -> None:
        super().__init__(
            f"model {name!r}: file {path} does not match the pinned manifest "
            f"({what}: expected {expected}, found {actual}). Remove it and fetch it again. {FETCH_HINT}"
        )
        self.name = name
        self.path = path
        self.expected = expected
        self.actual = actual


class ModelShapeMismatchError(ModelError):
    def __init__(self, name: str, path: str, expected: object, actual: object) -> None:
        super().__init__(
            f"model {name!r}: graph input of {path} is {actual}, the manifest pins {expected}; "
            "this is not the file the code was written for."
        )
        self.name = name
        self.expected = expected
        self.actual = actual
