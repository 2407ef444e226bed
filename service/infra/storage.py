"""Media storage behind one interface, encrypted at rest with AES-256-GCM.

Each object is ``nonce(12) || ciphertext+tag`` and its key is bound as associated data, so a blob copied
under another key fails to decrypt. Writes go to a temporary file then rename: an acknowledged upload is
complete on disk or absent, never half-written. A full disk (ENOSPC, quota) is a ``StorageFullError``: the
temporary file is removed, the previous object under that key (if any) is left as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


class UnreadableStorageError(StorageError):
    """The object is there but no media key in use opens it: cut short, tampered, or sealed with a key not given."""


class StorageUnavailableError(StorageError):
    """The store did not answer (connection refused, timeouts, 5xx after retries): nothing was acknowledged;
    the same request succeeds once it is back."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified: dt.datetime  # naive UTC, like the database's timestamps


class MediaStorage(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str, every_version: bool = True) -> bool:
        """Remove the object (False: there was none). every_version=False, on a versioned bucket: only hide it (a
        delete marker), its versions kept, where the bucket policy keeps them (under audit/: docs/operations.md)."""
        ...

    def exists(self, key: str) -> bool: ...
    def check(self) -> None:
        """Readiness: raise when the store cannot take a write now."""
        ...

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every stored object whose key starts with `prefix` (the orphan sweep, the rekey), in key order."""
        ...

    def remove_partial_writes(self, older_than: dt.datetime) -> int:
        """Delete what writes killed midway left behind, older than ``older_than`` (naive UTC); the count."""
        ...

    def reseal(self, key: str, write: bool = True) -> bool:
        """Seal the object again with the current media key when a previous key sealed it (True); False when the
        current key did, or it is gone. The new blob replaces the old one whole: interrupted, the old one stays.
        ``write=False``: only whether it would (``pension-cert rekey --check``). UnreadableStorageError when no key
        opens it."""
        ...


NONCE_BYTES, TAG_BYTES = 12, 16


class Sealer:
    """The one encryption format of every backend: ``nonce(12) || ciphertext+tag``, the object key bound as
    associated data (a blob copied under another key fails to open). Sealed with the current media key, opened
    with the first key that authenticates the blob: the current one, then each previous one (during a rotation,
    ``pension-cert rekey``)."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._aead = AESGCM(key)
        self._previous = [AESGCM(k) for k in previous if k != key]

    def seal(self, key: str, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, key.encode())

    def open(self, key: str, blob: bytes) -> bytes:
        return self._opened(key, blob)[0]

    def resealed(self, key: str, blob: bytes) -> bytes | None:
        """``blob`` sealed anew with the current key when a previous key sealed it; None when the current key did.
        UnreadableStorageError when no key in use opens it."""
        data, current = self._opened(key, blob)
        return None if current else self.seal(key, data)

    def _opened(self, key: str, blob: bytes) -> tuple[bytes, bool]:
        # Shorter than a nonce and a tag (an emptied or cut object): AES-GCM raises ValueError on a short nonce.
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise UnreadableStorageError(f"object {key!r} is cut short ({len(blob)} bytes): truncated or tampered")
        for i, aead in enumerate([self._aead, *self._previous]):
            try:
                return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key.encode()), i == 0
            except InvalidTag:
                continue
        raise UnreadableStorageError(f"object {key!r} fails authentication (wrong key or tampered)")


def check_key(key: str) -> str:
    """Keys are ours (``sessions/<uuid>/video``): never an ID number, never a path out of the store."""
    if not KEY_PATTERN.match(key) or ".." in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class LocalEncryptedStorage:
    def __init__(self, root: Path, key: bytes, previous_keys: Sequence[bytes] = (), min_free_bytes: int = 0) -> None:
        self.root = root
        self._sealer = Sealer(key, previous_keys)
        # Readiness needs room for this much (one certification's uploads, open_storage): less, and every upload
        # would get 507 STORAGE_FULL while the probe's 2 bytes still fit.
        self.min_free_bytes = min_free_bytes
        # Only the service's user lists or reads the media (encrypted, but their names are session ids):
        # the root is created 0700, an existing one loses its group and other permissions, blobs are 0600.
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_private(root)

    def _path(self, key: str) -> Path:
        return self.root / (check_key(key) + ".enc")

    def put(self, key: str, data: bytes) -> None:
        self._write(key, self._path(key), self._sealer.seal(key, data))

    def reseal(self, key: str, write: bool = True) -> bool:
        path = self._path(key)
        blob = _read_if_present(key, path)
        if blob is None:
            return False  # purged since it was listed
        resealed = self._sealer.resealed(key, blob)
        if resealed is None or not write:
            return resealed is not None
        # Only over the blob read: not if the service wrote the key meanwhile (a retaken card, sealed with the
        # current key) nor if it went (a purge, an erasure: the rename would bring a deleted object back).
        return self._write(key, path, resealed, only_over=blob)

    def _write(self, key: str, path: Path, blob: bytes, only_over: bytes | None = None) -> bool:
        # pid and thread id: two writers of one key (API threads, worker processes) never share a temp file.
        tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())  # ENOSPC may only show here (delayed allocation), before the rename
            # Compared as late as possible: a write of the service between this read and the rename (a few
            # microseconds, no lock is shared with it) is still lost (docs/operations.md, "Rotating the media key").
            if only_over is not None and not _unchanged(path, only_over):
                tmp.unlink()
                return False
            os.replace(tmp, path)
            _fsync_dir(path.parent)  # the rename itself survives a power cut once the upload is acknowledged
            return True
        except OSError as exc:
            with contextlib.suppress(OSError):  # e.g. a parent that is not a folder: report the write's error
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
        return self._sealer.open(key, blob)

    def delete(self, key: str, every_version: bool = True) -> bool:  # a file has no versions: removed either way
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:  # not ours to remove (permissions, a folder in its place): the storage's error
            raise StorageError(f"cannot delete {key!r}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[StoredObject]:
        # In the order of the keys, as a bucket lists them (`pension-cert rekey --after` resumes by key).
        keys = sorted(path.relative_to(self.root).as_posix()[: -len(".enc")] for path in self.root.rglob("*.enc"))
        for key in keys:
            if key.startswith(prefix):
                try:
                    mtime = (self.root / (key + ".enc")).stat().st_mtime
                except FileNotFoundError:  # deleted since it was listed (a purge running meanwhile)
                    continue
                yield StoredObject(key, dt.datetime.fromtimestamp(mtime, dt.UTC).replace(tzinfo=None))

    def remove_partial_writes(self, older_than: dt.datetime) -> int:
        """A process killed between writing a temp file and renaming it leaves ``*.tmp`` (sealed, but an object no
        key names and nothing else deletes): gone once older than any write in flight."""
        cutoff = older_than.replace(tzinfo=dt.UTC).timestamp()
        removed = 0
        for path in self.root.rglob("*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # its writer finished (renamed it) or another sweep took it
                continue
        return removed

    def free_bytes(self) -> int:
        """Space left on the store's volume for the service's user (pension_cert_media_free_bytes)."""
        return int(shutil.disk_usage(self.root).free)

    def check(self) -> None:
        free = self.free_bytes()
        if free < self.min_free_bytes:
            raise StorageFullError(f"{free} bytes free on the media volume, under {self.min_free_bytes} (one upload)")
        probe = self.root / f".readyz-{uuid.uuid4().hex}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)


def _make_private(directory: Path) -> None:
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
        if mode & 0o077:
            os.chmod(directory, mode & 0o700)
    except OSError as exc:  # not ours (a mounted volume): the deployment decides
        log.warning("cannot make media directory %s private (mode 0700): %s", directory, exc)


def _unchanged(path: Path, blob: bytes) -> bool:
    """Whether ``path`` still holds ``blob`` (False when it went); an OSError is the caller's to report."""
    try:
        return path.read_bytes() == blob
    except FileNotFoundError:
        return False


def _read_if_present(key: str, path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:  # not ours to read (permissions, a folder in its place): the storage's error
        raise StorageError(f"cannot read {key!r}: {exc.strerror}") from exc


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
