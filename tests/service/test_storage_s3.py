"""Media in an S3-compatible bucket (issue 19): a real S3 server over HTTP on loopback (moto's server, started
by tests/service/servers.py), the bucket sees ciphertext only, an outage is a clean 503 that changes no row, and a
whole certification runs with no media folder at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.certification.context import open_storage
from service.infra.config import Settings
from service.infra.storage import StorageError, StorageUnavailableError
from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options, make_client
from tests.service.adapters.http.helpers import auth, open_session, put_card, put_video
from tests.service.live import live_service, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.servers import S3Server, s3_server

CREDENTIALS = {"access_key_id": "test", "secret_access_key": "test", "region": "us-east-1"}


@pytest.fixture
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def options(server: S3Server, **overrides: Any) -> S3Options:
    return S3Options(endpoint_url=server.endpoint, **{**CREDENTIALS, **overrides})


def new_bucket(server: S3Server, name: str = "pension-media") -> Any:
    client = make_client(options(server))
    client.create_bucket(Bucket=name)
    return client


def test_objects_are_sealed_in_the_bucket_and_bound_to_their_key(s3: S3Server) -> None:
    raw = new_bucket(s3)
    store = S3EncryptedStorage(S3Location.parse("s3://pension-media/prod/media"), os.urandom(32), options(s3))
    secret = b"\xff\xd8 a face and an ID number 110101195001011234"
    store.put("sessions/abc/id_card", secret)
    assert store.get("sessions/abc/id_card") == secret and store.exists("sessions/abc/id_card")
    assert [o.key for o in store.list("sessions/")] == ["sessions/abc/id_card"]
    # The bucket holds ciphertext under the prefix, named by session, never by person.
    names = [o["Key"] for o in raw.list_objects_v2(Bucket="pension-media")["Contents"]]
    assert names == ["prod/media/sessions/abc/id_card.enc"]
    blob = raw.get_object(Bucket="pension-media", Key=names[0])["Body"].read()
    assert secret not in blob and b"110101" not in blob and len(blob) == 12 + len(secret) + 16
    # A blob copied under another key does not open (the key is bound as associated data).
    raw.put_object(Bucket="pension-media", Key="prod/media/sessions/xyz/id_card.enc", Body=blob)
    with pytest.raises(StorageError, match="fails authentication"):
        store.get("sessions/xyz/id_card")
    assert store.delete("sessions/abc/id_card") and not store.delete("sessions/abc/id_card")
    assert not store.exists("sessions/abc/id_card")
    with pytest.raises(StorageError, match="no object"):
        store.get("sessions/abc/id_card")
    with pytest.raises(StorageError, match="invalid storage key"):
        store.put("../escape", b"x")


def test_a_large_video_goes_up_in_parts(s3: S3Server) -> None:
    new_bucket(s3)
    small_parts = options(s3, multipart_threshold=5 * 1024 * 1024)  # S3's smallest part
    store = S3EncryptedStorage(S3Location.parse("s3://pension-media"), os.urandom(32), small_parts)
    video = os.urandom(12 * 1024 * 1024)
    store.put("sessions/big/video", video)
    assert store.get("sessions/big/video") == video
    etag = make_client(options(s3)).head_object(Bucket="pension-media", Key="sessions/big/video.enc")["ETag"]
    assert "-" in etag  # a multipart upload's ETag carries its part count


def test_an_unreachable_store_is_unavailable_not_missing(s3: S3Server) -> None:
    new_bucket(s3)
    store = S3EncryptedStorage(
        S3Location.parse("s3://pension-media"), os.urandom(32), options(s3, max_attempts=2, connect_timeout_s=1)
    )
    store.check()
    store.put("sessions/a/id_card", b"card")
    s3.kill()
    for call in (lambda: store.put("sessions/a/video", b"v"), lambda: store.get("sessions/a/id_card"), store.check):
        with pytest.raises(StorageUnavailableError):
            call()
    with pytest.raises(StorageUnavailableError):
        store.exists("sessions/a/id_card")  # "unknown", never "absent", while the store is down


def test_settings_choose_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    new_bucket(s3)
    settings = s3_settings(s3, tmp_path)
    store = open_storage(settings)
    assert isinstance(store, S3EncryptedStorage) and store.location == S3Location("pension-media", "media")
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        S3Location.parse("https://pension-media/media")


def s3_settings(server: S3Server, var_dir: Path) -> Settings:
    from tests.service.conftest import make_settings

    return make_settings(var_dir, **s3_overrides(server))


def s3_overrides(server: S3Server) -> dict[str, str]:
    return {
        "media_url": "s3://pension-media/media",
        "s3_endpoint_url": server.endpoint,
        "s3_region": "us-east-1",
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
    }


@pytest.mark.slow
def test_a_certification_with_media_only_in_the_bucket_and_an_outage_between_uploads(
    s3: S3Server, backend_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    """API and worker share no folder: the media live in the bucket only. The store going away between the
    card and the video answers 503 with a reason code and leaves the session as it was; once back, the same
    request goes through and the certification is decided (a Celery worker process on the scale-out backend)."""
    new_bucket(s3)
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    with live_service(backend_urls, tmp_path, True, **s3_overrides(s3)) as (client, settings):
        ext = enrol(client, fields)
        s = open_session(client, ext)
        assert put_card(client, s, card).status_code == 200
        s3.kill(keep=True)  # a restart: the store keeps what it held
        r = put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes(), rid="video-request-1")
        assert r.status_code == 503 and r.json()["error"]["code"] == "STORAGE", r.text
        status = client.get(f"/api/v1/sessions/{s['session_id']}", headers=auth(s)).json()
        assert status["uploads"] == {"id_card": True, "video": False} and status["state"] != "queued"
        assert client.get("/readyz").status_code == 503
        s3.start()  # back on the same address, with what it held: the same video request succeeds
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes(), rid="video-request-1").status_code == 200
        result = wait_decided(client, s)
        assert result["decision"] == "accept", result
        assert not settings.effective_media_dir.exists() or not any(settings.effective_media_dir.rglob("*.enc"))


def enrol(client: TestClient, fields: Any) -> str:
    """A beneficiary with the card's number, through the roster import (the service's own database)."""
    import csv
    import io

    from tests.service.conftest import ADMIN
    from tests.service.test_roster import HEADER

    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, ["S3-1", fields.id_number, fields.name, "", "enterprise_pension", "", ""]])
    r = client.post("/api/v1/roster", files={"file": ("r.csv", buf.getvalue().encode(), "text/csv")}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    return "S3-1"
