"""Where model files live: resolve the directory, verify size and sha256, fetch pinned files.

The directory comes from the environment variable ``PENSION_CERT_MODELS_DIR``; without it,
``~/.cache/pension-cert/models``. Nothing is ever downloaded implicitly: only ``fetch`` downloads.
"""

from __future__ import annotations

import enum
import hashlib
import io
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from models.errors import ModelDownloadError, ModelHashMismatchError, ModelMissingError
from models.manifest import Manifest, ModelSpec, load_manifest

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "PENSION_CERT_MODELS_DIR"
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60
_MAX_DOWNLOAD_BYTES = 1 << 30


def default_models_dir() -> Path:
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "pension-cert" / "models"


class ModelStatus(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    SIZE_MISMATCH = "size_mismatch"
    HASH_MISMATCH = "hash_mismatch"


@dataclass(frozen=True)
class ModelState:
    spec: ModelSpec
    path: Path
    status: ModelStatus


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ModelStore:
    """Verified access to the pinned model files of one directory."""

    def __init__(self, models_dir: Path | str | None = None, manifest: Manifest | None = None) -> None:
        self.models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
        self.manifest = manifest or load_manifest()
        # Hashing is cheap but not free; a file is re-hashed only when its size or mtime changes.
        self._verified: dict[Path, tuple[int, int]] = {}

    def _path(self, spec: ModelSpec) -> Path:
        return self.models_dir / spec.file

    def state(self, name: str) -> ModelState:
        spec = self.manifest.model(name)
        path = self._path(spec)
        return ModelState(spec, path, self._check(spec, path))

    def _check(self, spec: ModelSpec, path: Path) -> ModelStatus:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return ModelStatus.MISSING
        if spec.size and stat.st_size != spec.size:
            return ModelStatus.SIZE_MISMATCH
        key = (stat.st_size, stat.st_mtime_ns)
        if self._verified.get(path) == key:
            return ModelStatus.OK
        if sha256_file(path) != spec.sha256:
            return ModelStatus.HASH_MISMATCH
        self._verified[path] = key
        return ModelStatus.OK

    def is_available(self, name: str) -> bool:
        return self.state(name).status is ModelStatus.OK

    def path(self, name: str) -> Path:
        """Path of a verified model file, or a clear exception naming the file and the fix."""
        st = self.state(name)
        spec, path = st.spec, st.path
        if st.status is ModelStatus.MISSING:
            raise ModelMissingError(name, str(path), spec.sha256)
        if st.status is ModelStatus.SIZE_MISMATCH:
            raise ModelHashMismatchError(name, str(path), str(spec.size), str(path.stat().st_size), "size")
        if st.status is ModelStatus.HASH_MISMATCH:
            raise ModelHashMismatchError(name, str(path), spec.sha256, sha256_file(path))
        return path

    def fetch(self, name: str, source: str | None = None) -> Path:
        """Copy (from a directory) or download (from a URL, default: the pinned upstream URL) and verify."""
        spec = self.manifest.model(name)
        if self.is_available(name):
            return self._path(spec)
        self.models_dir.mkdir(parents=True, exist_ok=True)
        data = self._read_source(spec, source)
        actual = hashlib.sha256(data).hexdigest()
        if actual != spec.sha256:
            raise ModelHashMismatchError(name, source or spec.url, spec.sha256, actual)
        target = self._path(spec)
        with tempfile.NamedTemporaryFile(dir=self.models_dir, delete=False, suffix=".part") as tmp:
            tmp.write(data)
        os.replace(tmp.name, target)
        log.info("fetched model %s into %s", name, target)
        return self.path(name)

    def _read_source(self, spec: ModelSpec, source: str | None) -> bytes:
        if source and "://" in source and not _is_url(source):
            raise ModelDownloadError(spec.name, source, "only a folder or an http(s):// or file:// URL is accepted")
        if source and not _is_url(source):
            local = Path(source).expanduser() / spec.file
            if not local.is_file():
                raise ModelMissingError(spec.name, str(local), spec.sha256)
            with local.open("rb") as fh, io.BytesIO() as buf:
                shutil.copyfileobj(fh, buf)
                return buf.getvalue()
        if source and _is_url(source):
            url = source.rstrip("/") + "/" + spec.file
            return _download(spec.name, url)
        blob = _download(spec.name, spec.url)
        if spec.archive_member:
            with zipfile.ZipFile(io.BytesIO(blob)) as zf:
                member = next(n for n in zf.namelist() if n.rsplit("/", 1)[-1] == spec.archive_member)
                return zf.read(member)
        return blob


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def _download(name: str, url: str) -> bytes:
    log.info("downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            data: bytes = resp.read(_MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(name, url, f"the server answered {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:  # refused, unknown host, a missing file:// path: its reason, not its repr
        raise ModelDownloadError(name, url, _reason(exc.reason)) from exc
    except (TimeoutError, OSError) as exc:
        raise ModelDownloadError(name, url, _reason(exc)) from exc
    if len(data) > _MAX_DOWNLOAD_BYTES:
        raise ValueError(f"download from {url} is larger than {_MAX_DOWNLOAD_BYTES} bytes")
    return data


def _reason(reason: object) -> str:
    """An OS error's own words ("Connection refused"), not the exception's repr."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    return str(reason) or type(reason).__name__
