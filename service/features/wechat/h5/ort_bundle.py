"""The files the capture page runs, served only as bytes whose sha256 is the pinned one: the onnxruntime-web files
against what scripts/web_bundle.sh recorded in the bundle's `.complete` (`sha256sum` lines) when it extracted them
from the tarball it checked, the guidance models against models/manifest.toml (vendor.model_file).

The served bytes are the hashed bytes, kept in memory (three bundle files, about 15 MB, and the two models): a file
changed on disk after its check is never sent under the immutable, year-long cache URL. A file whose stat (device,
inode, size, mtime) changes is read and hashed again; one that no longer matches is refused, and the page keeps its
fallback flow.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RECORD = ".complete"


@dataclass(frozen=True)
class _Verified:
    identity: tuple[int, int, int, int]
    sha256: str
    data: bytes


_verified: dict[Path, _Verified] = {}
_lock = threading.Lock()


def recorded_hashes(folder: Path) -> dict[str, str]:
    """File name → sha256 as `sha256sum` wrote them in `.complete` ({} when it is missing or unreadable)."""
    try:
        text = (folder / RECORD).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    hashes: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition(" ")
        name = name.lstrip(" *")  # `sha256sum` separates with two spaces, or " *" in binary mode
        if len(digest) == 64 and name:
            hashes[name] = digest.lower()
    return hashes


def verified_bytes(folder: Path, name: str) -> bytes | None:
    """The bytes of the bundle's `folder/name` if their sha256 is the one `.complete` records for it; None otherwise
    (missing, not recorded, or changed)."""
    expected = recorded_hashes(folder).get(name)
    if expected is None:
        return None
    return pinned_bytes(folder / name, expected, f"the sha256 recorded in {folder / RECORD}")


def pinned_bytes(path: Path, expected: str, pinned_by: str) -> bytes | None:
    """The bytes of `path` if their sha256 is `expected`; None otherwise (missing, or changed: logged as an error,
    since the file was checked when it was put there). `pinned_by` names the record in that line."""
    try:
        st = path.stat()
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(path)
    if known is not None and known.identity == identity and known.sha256 == expected:
        return known.data
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.error("h5 guidance: %s does not match %s: not served", path, pinned_by)
        with _lock:
            _verified.pop(path, None)
        return None
    with _lock:
        _verified[path] = _Verified(identity, expected, data)
    return data
