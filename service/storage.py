"""Media storage behind one interface, encrypted at rest with AES-256-GCM.

Each object is ``nonce(12) || ciphertext+tag`` and its key is bound as associated data, so a blob copied
under another key fails to decrypt. Writes go to a temporary file then rename: an acknowledged upload is
complete on disk or absent, never half-written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,200}$")


class StorageError(Exception):
    pass


class MediaStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> bool: ...
    def exists(self, key: str) -> bool: ...


class LocalEncryptedStorage:
    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self._aead = AESGCM(key)
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not KEY_PATTERN.match(key) or ".." in key:
            raise StorageError(f"invalid storage key {key!r}")
        return self.root / (key + ".enc")

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, data, key.encode())
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"no object {key!r}") from exc
        try:
            return self._aead.decrypt(blob[:12], blob[12:], key.encode())
        except InvalidTag as exc:
            raise StorageError(f"object {key!r} fails authentication (wrong key or tampered)") from exc

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()
