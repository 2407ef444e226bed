"""Media in S3-compatible object storage (MinIO, Ceph RGW, OSS, COS, OBS): API and workers on separate hosts
share no disk, only the bucket.

Objects are sealed client-side exactly as on disk (``storage.Sealer``): the bucket and its operators see
ciphertext only, under keys that name a session, never a person. A PUT is one request (multipart above
``multipart_threshold``): an object is complete or absent, never half-written, and the session row that points to
it is committed only after the PUT returned. Throttling and 5xx answers are retried with exponential back-off
(botocore's standard mode); a store that still does not answer raises ``StorageUnavailableError`` (503 to the
client, nothing acknowledged).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from service.infra.storage import Sealer, StorageError, StorageUnavailableError, StoredObject, check_key

log = logging.getLogger(__name__)

# Codes of a missing object or bucket: a caller error, not an outage.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/optional/prefix`` → bucket and prefix (no leading or trailing slash)."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"media URL must look like s3://bucket/prefix, got {url!r}")
        return cls(parsed.netloc, parsed.path.strip("/"))


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: str = "path"  # MinIO and most private clouds; "virtual" for the public clouds
    max_attempts: int = 5
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 30.0
    multipart_threshold: int = 16 * 1024 * 1024


def make_client(options: S3Options) -> Any:
    config = Config(
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        connect_timeout=options.connect_timeout_s,
        read_timeout=options.read_timeout_s,
        s3={"addressing_style": options.addressing_style},
        signature_version="s3v4",
    )
    return boto3.client(
        "s3",
        endpoint_url=options.endpoint_url,
        region_name=options.region,
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        config=config,
    )


class S3EncryptedStorage:
    def __init__(
        self,
        location: S3Location,
        key: bytes,
        options: S3Options,
        client: Any | None = None,
        previous_keys: Sequence[bytes] = (),
    ) -> None:
        self.location = location
        self._sealer = Sealer(key, previous_keys)
        self._client = client or make_client(options)
        self._transfer = TransferConfig(multipart_threshold=options.multipart_threshold, use_threads=False)
        self._versioned: bool | None = None  # asked of the bucket on the first delete

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.location.prefix}/{key}.enc" if self.location.prefix else f"{key}.enc"

    def put(self, key: str, data: bytes) -> None:
        blob = self._sealer.seal(key, data)
        with _translated(key):
            self._client.upload_fileobj(
                io.BytesIO(blob), self.location.bucket, self._object(key), Config=self._transfer
            )

    def get(self, key: str) -> bytes:
        with _translated(key):
            answer = self._client.get_object(Bucket=self.location.bucket, Key=self._object(key))
            blob: bytes = answer["Body"].read()
        return self._sealer.open(key, blob)

    def reseal(self, key: str, write: bool = True) -> bool:
        """One conditional PUT of the new blob (``If-Match`` the ETag read: a write of the service after the read,
        or a purge, makes it refuse and leaves what is there). On a versioned bucket the versions OLDER than the one
        read then go (and the one read, once replaced): those sealed with the old key, and any a killed run left;
        never one put after the read. Not under ``audit/``: the anchors' versions are kept by the bucket policy on
        purpose (docs/operations.md)."""
        name = self._object(key)
        try:
            with _translated(key):
                answer = self._client.get_object(Bucket=self.location.bucket, Key=name)
                blob: bytes = answer["Body"].read()
        except MissingObjectError:
            return False  # purged since it was listed
        resealed = self._sealer.resealed(key, blob)
        if not write:
            return resealed is not None
        if resealed is not None and not self._put_if_match(key, name, resealed, str(answer.get("ETag") or "")):
            return False  # rewritten (with the current key) or deleted meanwhile: left as it is
        read = str(answer.get("VersionId") or "")
        if read and read != "null" and not key.startswith("audit/") and self._bucket_versioned():
            self._delete_older_versions(key, name, read, including=resealed is not None)
        return resealed is not None

    def _put_if_match(self, key: str, name: str, blob: bytes, etag: str) -> bool:
        """PUT only over the version with ``etag``: False when the store refuses (412: another write came; 404:
        the object went). A store that ignores If-Match writes anyway (docs/operations.md)."""
        try:
            with _translated(key):
                self._client.put_object(Bucket=self.location.bucket, Key=name, Body=blob, IfMatch=etag)
        except MissingObjectError:
            return False
        except StorageError as exc:
            if isinstance(exc.__cause__, ClientError) and _status(exc.__cause__) in (409, 412):
                return False  # 409: a concurrent conditional write of the same key
            raise
        return True

    def _delete_older_versions(self, key: str, name: str, read: str, including: bool) -> None:
        """The versions of ``name`` listed after ``read`` (a key's versions are listed newest first), and ``read``
        itself when ``including``; nothing when ``read`` is no longer listed."""
        with _translated(key):
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.location.bucket, Prefix=name
            )
            versions = [str(v["VersionId"]) for page in pages for v in page.get("Versions", []) if v["Key"] == name]
            if read not in versions:
                return
            older = versions[versions.index(read) + (0 if including else 1) :]
            for version in older:
                self._client.delete_object(Bucket=self.location.bucket, Key=name, VersionId=version)

    def delete(self, key: str, every_version: bool = True) -> bool:
        """Remove the object for good; False when there was none. On a versioned bucket a plain DELETE only adds a
        delete marker and keeps every earlier version readable: there each version of the key is deleted, unless
        `every_version` is False (a leftover under audit/, whose versions the advised policy keeps: only hidden)."""
        name = self._object(key)
        if every_version and self._bucket_versioned():
            return self._delete_versions(key, name)
        if not self.exists(key):
            return False
        with _translated(key):
            self._client.delete_object(Bucket=self.location.bucket, Key=name)
        return True

    def _bucket_versioning_status(self) -> str:
        with _translated("*"):
            answer = self._client.get_bucket_versioning(Bucket=self.location.bucket)
        return str(answer.get("Status") or "")

    def _bucket_versioned(self) -> bool:
        if self._versioned is None:
            # "Suspended" still holds the versions written while it was enabled.
            self._versioned = self._bucket_versioning_status() in ("Enabled", "Suspended")
            if self._versioned:
                log.info("bucket %s is versioned: media are deleted version by version", self.location.bucket)
        return self._versioned

    def _delete_versions(self, key: str, name: str) -> bool:
        with _translated(key):
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.location.bucket, Prefix=name
            )
            found: list[tuple[str, bool]] = []  # (version id, is the current object version)
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] == name:
                        found.append((str(v["VersionId"]), bool(v.get("IsLatest"))))
                found += [(str(m["VersionId"]), False) for m in page.get("DeleteMarkers", []) if m["Key"] == name]
            for version, _ in found:
                self._client.delete_object(Bucket=self.location.bucket, Key=name, VersionId=version)
        return any(current for _, current in found)

    def exists(self, key: str) -> bool:
        try:
            with _translated(key):
                self._client.head_object(Bucket=self.location.bucket, Key=self._object(key))
        except MissingObjectError:
            return False
        return True

    def check(self) -> None:
        """Readiness: the bucket answers and takes a write (a read-only or full bucket is not ready)."""
        probe = f"{self.location.prefix}/.readyz" if self.location.prefix else ".readyz"
        with _translated(probe):
            written = self._client.put_object(Bucket=self.location.bucket, Key=probe, Body=b"ok")
            # On a versioned bucket the probe's own version goes, not only its name (no version piles up).
            version = {"VersionId": written["VersionId"]} if written.get("VersionId") else {}
            self._client.delete_object(Bucket=self.location.bucket, Key=probe, **version)

    def remove_partial_writes(self, older_than: dt.datetime) -> int:
        """Nothing to do: a PUT is complete or absent (an unfinished multipart upload is the bucket's lifecycle
        rule's to abort, docs/operations.md)."""
        return 0

    def list(self, prefix: str) -> Iterator[StoredObject]:
        root = f"{self.location.prefix}/" if self.location.prefix else ""
        with _translated(prefix or "*"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=root + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"])[len(root) :]
                    if name.endswith(".enc"):
                        modified = item["LastModified"].astimezone(dt.UTC).replace(tzinfo=None)
                        yield StoredObject(name[: -len(".enc")], modified)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class MissingObjectError(StorageError):
    pass


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """botocore's errors → the storage errors the service maps (missing, unavailable, other)."""
    try:
        yield
    except S3UploadFailedError as exc:  # the transfer manager's wrapper: its cause is not kept
        raise StorageUnavailableError(f"object store did not take {key!r}: {exc}") from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in MISSING_CODES:
            raise MissingObjectError(f"no object {key!r}") from exc
        if status >= 500 or code in {"SlowDown", "ServiceUnavailable", "RequestTimeout"}:
            raise StorageUnavailableError(f"object store unavailable for {key!r}: {code}") from exc
        raise StorageError(f"object store refused {key!r}: {code}") from exc
    except BotoCoreError as exc:  # connection refused, timeouts, a connection dropped mid-transfer
        raise StorageUnavailableError(f"object store unreachable for {key!r}: {type(exc).__name__}") from exc
