"""Where model files live: resolve the directory, verify size and sha256, fetch pinned files.

The directory comes from the environment variable ``PENSION_CERT_MODELS_DIR``; without it,
``~/.cache/pension-cert/models``. Nothing is ever downloaded implicitly: only ``fetch`` downloads.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import http.client
import io
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.errors import FETCH_HINT, ModelDownloadError, ModelError, ModelHashMismatchError, ModelMissingError
from models.manifest import Manifest, ModelSpec, load_manifest

log = logging.getLogger(__name__)

ENV_MODELS_DIR = "PENSION_CERT_MODELS_DIR"
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_S = 60
_MAX_DOWNLOAD_BYTES = 1 << 30
_DEFAULT_PORTS = {"http": 80, "https": 443}
# A models folder that cannot hold the files (ModelsDirError): the words of the mistake and of its fix.
_MAY_NOT = "the service's user may not"
_FIX = "point it at a folder the service's user may write in"
# What a source URL whose password ended its host early is told (the password never repeated).
AT_PAST_HOST = (
    "an @ after the host's end: percent-encode / ? # in the password (%2F %3F %23), "
    "e.g. https://user:pa%2Fss@mirror/models"
)


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
    UNREADABLE = "unreadable"

    @property
    def in_words(self) -> str:
        """The status as a message says it (`models list` JSON keeps the value)."""
        return _STATUS_WORDS.get(self, self.value)


_STATUS_WORDS = {
    ModelStatus.SIZE_MISMATCH: "damaged (its size is not the manifest's)",
    ModelStatus.HASH_MISMATCH: "damaged (its sha256 is not the manifest's)",
    # Any other OSError of its stat or its read (the message names the file after these words; no errno here):
    # PENSION_CERT_MODELS_DIR naming a file, a folder or file the service's user may not read, a disk error.
    ModelStatus.UNREADABLE: "unreadable (a folder on its path is a file, or reading it is refused)",
}


class ModelsDirError(ModelError):
    """The models folder cannot hold the files (PENSION_CERT_MODELS_DIR names a file, or a folder the service's user
    may not create or write in): a configuration mistake, the same for every model, so told once (models_cmd)."""

    def __init__(self, models_dir: Path, problem: str) -> None:
        super().__init__(f"{ENV_MODELS_DIR}={models_dir}: {problem}")
        self.models_dir = models_dir


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
        """The file's status; never raises for the file system (a folder that is a file, a permission, a read
        error is UNREADABLE), so every start check reports it in its one line (models_cmd.pack_problems)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return ModelStatus.MISSING
        except OSError:  # NotADirectoryError (the folder is a file), PermissionError (a folder above it)
            return ModelStatus.UNREADABLE
        if spec.size and stat.st_size != spec.size:
            return ModelStatus.SIZE_MISMATCH
        key = (stat.st_size, stat.st_mtime_ns)
        if self._verified.get(path) == key:
            return ModelStatus.OK
        try:
            digest = sha256_file(path)
        except OSError:  # PermissionError (the file's mode), IsADirectoryError, EIO
            return ModelStatus.UNREADABLE
        if digest != spec.sha256:
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
        if st.status is ModelStatus.UNREADABLE:
            raise ModelError(f"model {name!r}: file {path} is {st.status.in_words}. {FETCH_HINT}")
        return path

    def load_bytes(self, name: str) -> bytes:
        """The model file's bytes, read once and hashed: what a session is built from (models/packs.py
        load_model). Never the (size, mtime) shortcut of ``state``: a file swapped with the same size and mtime
        after an earlier check, or between a check and a re-open by path, would run under the pinned version."""
        spec = self.manifest.model(name)
        path = self._path(spec)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelMissingError(name, str(path), spec.sha256) from None
        except OSError:  # a folder on its path is a file, a permission, a read error: as ``path``'s message
            unreadable = ModelStatus.UNREADABLE.in_words
            raise ModelError(f"model {name!r}: file {path} is {unreadable}. {FETCH_HINT}") from None
        if spec.size and len(data) != spec.size:
            raise ModelHashMismatchError(name, str(path), str(spec.size), str(len(data)), "size")
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            raise ModelHashMismatchError(name, str(path), spec.sha256, digest)
        return data

    def fetch(self, name: str, source: str | None = None) -> Path:
        """Copy (from a directory) or download (from a URL, default: the pinned upstream URL) and verify."""
        spec = self.manifest.model(name)
        if self.is_available(name):
            return self._path(spec)
        self._make_dir()
        data = self._read_source(spec, source)
        actual = hashlib.sha256(data).hexdigest()
        if actual != spec.sha256:
            raise ModelHashMismatchError(name, shown_source(source or spec.url), spec.sha256, actual)
        target = self._path(spec)
        try:
            with tempfile.NamedTemporaryFile(dir=self.models_dir, delete=False, suffix=".part") as tmp:
                tmp.write(data)
            os.replace(tmp.name, target)
        except PermissionError:
            raise ModelsDirError(self.models_dir, f"{_MAY_NOT} write in it: {_FIX}") from None
        log.info("fetched model %s into %s", name, target)
        return self.path(name)

    def _make_dir(self) -> None:
        """The models folder, created if need be; a ModelsDirError (not an OSError per model) when it cannot be."""
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # with exist_ok: the name is taken by something that is not a folder
            raise ModelsDirError(self.models_dir, f"is a file, not a folder: {_FIX}") from None
        except NotADirectoryError:
            raise ModelsDirError(self.models_dir, f"a folder on its path is a file: {_FIX}") from None
        except PermissionError:
            raise ModelsDirError(self.models_dir, f"{_MAY_NOT} create it: {_FIX}") from None

    def _read_source(self, spec: ModelSpec, source: str | None) -> bytes:
        if source and "://" in source and not _is_url(source):
            reason = "only a folder or an http(s):// or file:// URL is accepted"
            raise ModelDownloadError(spec.name, shown_source(source), reason)
        if source and not _is_url(source):
            local = Path(source).expanduser() / spec.file
            if not local.is_file():
                raise ModelMissingError(spec.name, str(local), spec.sha256)
            with local.open("rb") as fh, io.BytesIO() as buf:
                shutil.copyfileobj(fh, buf)
                return buf.getvalue()
        if source and _is_url(source):
            if _at_past_host(source):
                raise ModelDownloadError(spec.name, shown_source(source), AT_PAST_HOST)
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


def _at_past_host(source: str) -> bool:
    """An @ in an http(s) URL's path, query or fragment: a password holding / ? or # ended the host early
    (`https://user:pa/ss@mirror/…` is host `user`, port `pa`), so the rest, password and all, is not a user part."""
    parts = urllib.parse.urlsplit(source)
    return parts.scheme in ("http", "https") and "@" in source.partition("://")[2][len(parts.netloc) :]


def shown_source(source: str) -> str:
    """A source as messages and logs may show it: a URL's password (or a lone user part: a token) replaced by ***
    (`https://user:***@mirror/models`). A bureau's mirror behind a password is named without it; a URL whose
    password ended its host early (_at_past_host) is shown as its scheme only, as nothing in it is known safe."""
    parts = urllib.parse.urlsplit(source)
    if _at_past_host(source):
        return f"{parts.scheme}://***"
    if "@" not in parts.netloc:
        return source
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, colon, _password = userinfo.partition(":")
    hidden = f"{user}:***" if colon else "***"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{hidden}@{host}"))


def keeps_credentials(old: str, new: str) -> bool:
    """Whether a redirect from `old` to `new` may carry the basic authentication: the same host and port, or the
    same host moved from http to https (its default ports or the same one); never to another host or down to http."""
    before, after = urllib.parse.urlsplit(old), urllib.parse.urlsplit(new)
    if not before.hostname or before.hostname != after.hostname:
        return False
    ports = (before.port or _DEFAULT_PORTS.get(before.scheme), after.port or _DEFAULT_PORTS.get(after.scheme))
    if before.scheme == after.scheme:
        return ports[0] == ports[1]
    return (before.scheme, after.scheme) == ("http", "https") and (ports[0] == ports[1] or ports == (80, 443))


class _SameServerRedirect(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, the Authorization header kept where ``keeps_credentials`` allows (a mirror's folder
    moved: /models → /models/), dropped otherwise (an unredirected header: urllib never carries it)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and keeps_credentials(req.full_url, new.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


_OPENER = urllib.request.build_opener(_SameServerRedirect)


def _request(url: str) -> urllib.request.Request:
    """The request for `url`, its credentials (https://user:password@host/…) sent as HTTP basic authentication:
    urllib would take them for part of the host name. Carried over a redirect to the same server only."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return urllib.request.Request(url)
    userinfo, host = parts.netloc.rsplit("@", 1)
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=host)))
    user, _colon, password = (urllib.parse.unquote(p) for p in userinfo.partition(":"))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


def _download(name: str, url: str) -> bytes:
    shown = shown_source(url)
    log.info("downloading %s", shown)
    try:
        with _OPENER.open(_request(url), timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            data: bytes = resp.read(_MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(name, shown, f"the server answered {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:  # refused, unknown host, a missing file:// path: its reason, not its repr
        raise ModelDownloadError(name, shown, _reason(exc.reason)) from exc
    except (TimeoutError, OSError) as exc:
        raise ModelDownloadError(name, shown, _reason(exc)) from exc
    except (ValueError, http.client.HTTPException):  # InvalidURL (a port not a number): its text may quote it
        raise ModelDownloadError(name, shown, "not a valid URL (http(s)://[user:password@]host[:port]/path)") from None
    if len(data) > _MAX_DOWNLOAD_BYTES:
        raise ModelDownloadError(name, shown, f"larger than {_MAX_DOWNLOAD_BYTES} bytes")
    return data


def _reason(reason: object) -> str:
    """An OS error's own words ("Connection refused"), not the exception's repr."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    return str(reason) or type(reason).__name__
