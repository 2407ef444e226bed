"""The onnxruntime-web files of the capture page, served only as bytes whose sha256 is the one scripts/web_bundle.sh
recorded in the bundle's `.complete` (`sha256sum` lines) when it extracted them from the tarball it checked.

The served bytes are the hashed bytes, kept in memory (three files, about 15 MB): a file changed on disk after its
check is never sent under the immutable, year-long cache URL. A file whose stat (device, inode, size, mtime)
changes is read and hashed again; one that no longer matches is refused, and the page keeps its fallback flow.
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
    """The bytes of `folder/name` if their sha256 is the one recorded for it; None otherwise (missing, not
    recorded, or changed: logged as an error, since the bundle was checked when it was extracted)."""
    expected = recorded_hashes(folder).get(name)
    path = folder / name
    try:
        st = path.stat()
    except OSError:
        return None
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(path)
    if expected is None:
        return None
    if known is not None and known.identity == identity and known.sha256 == expected:
        return known.data
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        log.error("h5 guidance: %s does not match the sha256 recorded in %s: not served", path, folder / RECORD)
        with _lock:
            _verified.pop(path, None)
        return None
    with _lock:
        _verified[path] = _Verified(identity, expected, data)
    return data
