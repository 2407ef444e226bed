"""Media storage behind one interface, encrypted at rest with AES-256-GCM.

Each object is ``nonce(12) || ciphertext+tag`` and its key is bound as associated data, so a blob copied
under another key fails to decrypt. Writes go to a temporary file then rename: an acknowledged upload is
complete on disk or absent, never half-written. A full disk (ENOSPC, quota) is a ``StorageFullError``: the
temporary file is removed, the previous object under that key (if any) is left as it was.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import threading
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,200}$")


class StorageError(Exception):
    pass


class StorageFullError(StorageError):
    """No space (or quota) left on the media store: nothing was written; retrying after space is freed works."""


FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class MediaStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> bool: ...
    def exists(self, key: str) -> bool: ...


class LocalEncryptedStorage:
    def __init__(self, root: Path, key: bytes) -> None:
        self.root = root
        self._aead = AESGCM(key)
        # Only the service's user lists or reads the media (encrypted, but their names are session ids):
        # the root is created 0700, an existing one loses its group and other permissions, blobs are 0600.
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_private(root)

    def _path(self, key: str) -> Path:
        if not KEY_PATTERN.match(key) or ".." in key:
            raise StorageError(f"invalid storage key {key!r}")
        return self.root / (key + ".enc")

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, data, key.encode())
        # pid and thread id: two writers of one key (API threads, worker processes) never share a temp file.
        tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())  # ENOSPC may only show here (delayed allocation), before the rename
            os.replace(tmp, path)
            _fsync_dir(path.parent)  # the rename itself survives a power cut once the upload is acknowledged
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in FULL_ERRNOS:
                raise StorageFullError(f"no space left for {key!r}: {exc.strerror}") from exc
            raise StorageError(f"cannot write {key!r}: {exc}") from exc

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


def _make_private(directory: Path) -> None:
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(directory, mode & 0o700)
    except OSError as exc:  # not ours (a mounted volume): the deployment decides
        log.warning("cannot make media directory %s private (mode 0700): %s", directory, exc)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
