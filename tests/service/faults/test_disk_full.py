"""Media storage on a small tmpfs that is filled up: uploads are refused with 507 STORAGE_FULL and leave
nothing behind (no temporary file, no row pointing at missing media, the challenge nonce not spent); what was
stored before stays intact; once space is freed the same requests succeed. The worker needs no space (it
only reads media; templates and decisions go to the database, certificates are rendered on request), so a
full disk never becomes a wrong decision."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.adapters.workers.worker import PollingWorker
from service.certification.catalog import SERVICE_MESSAGES_ZH
from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, CertSession, VideoFingerprint
from service.infra.storage import LocalEncryptedStorage, StorageFullError
from tests.service.adapters.http.helpers import auth, open_session, put_card, put_video
from tests.service.faults.helpers import assert_decided_once, enrol, video_copy
from tests.service.live import live_service

pytestmark = [pytest.mark.slow, pytest.mark.faults]

DISK = "4m"  # room for one session's media (card + 1.7 MB video), not much more


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own, unmounted in teardown whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "media"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last page; returns the filler file (delete it to free the space)."""
    filler = disk / "filler.bin"
    with filler.open("ab", buffering=0) as fh:
        for chunk in (64 * 1024, 4096):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def leftovers(disk: Path) -> list[str]:
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file() and p.name != "filler.bin")


def test_storage_put_on_full_disk_leaves_nothing_and_keeps_old_object(small_disk: Path) -> None:
    store = LocalEncryptedStorage(small_disk, os.urandom(32))
    store.put("a/one", b"first version " * 1000)
    filler = fill(small_disk)
    with pytest.raises(StorageFullError):
        store.put("b/two", os.urandom(200_000))
    with pytest.raises(StorageFullError):
        store.put("a/one", os.urandom(200_000))  # an overwrite that does not fit: the old object stays
    assert leftovers(small_disk) == ["a/one.enc"]
    assert store.get("a/one") == b"first version " * 1000
    filler.unlink()
    store.put("b/two", b"fits now")
    assert store.get("b/two") == b"fits now"


def test_full_media_disk_refuses_uploads_cleanly_and_recovers(small_disk: Path, tmp_path: Path, data_dir: Path) -> None:
    backend = {"database_url": f"sqlite:///{tmp_path / 'full.db'}", "broker_url": "", "worker_mode": "none"}
    with live_service(backend, tmp_path, worker_mode="none", media_dir=small_disk) as (client, settings):
        ctx = ServiceContext(settings, schema=None)
        (ext, card), (ext2, card2) = enrol(client, data_dir, "FULL", 2)
        video = video_copy(data_dir, 0)
        a = open_session(client, ext)
        assert put_card(client, a, card).status_code == 200
        b = open_session(client, ext2)
        stored_before = leftovers(small_disk)

        filler = fill(small_disk)
        r = put_video(client, a, video, rid="video-a-0001")
        assert r.status_code == 507, r.text
        err = r.json()["error"]
        assert err["code"] == "STORAGE_FULL" and err["message"] == SERVICE_MESSAGES_ZH["STORAGE_FULL"], err
        r = put_card(client, b, card2, rid="card-b-00001")
        assert r.status_code == 507 and r.json()["error"]["code"] == "STORAGE_FULL", r.text
        # Nothing half-written, no row pointing at missing media, the nonce not spent, no fingerprint kept.
        assert leftovers(small_disk) == stored_before
        with ctx.db() as db:
            ra, rb = db.get(CertSession, a["session_id"]), db.get(CertSession, b["session_id"])
            assert ra is not None and ra.state == "open" and ra.video_key is None and ra.nonce_used_at is None
            assert rb is not None and rb.id_card_key is None
            assert db.scalar(select(func.count()).select_from(VideoFingerprint)) == 0
            uploads = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("upload.%")))
            assert uploads == 1  # a's card only
            assert ra.id_card_key is not None and ctx.storage.get(ra.id_card_key) == card  # intact
        assert client.get(f"/api/v1/sessions/{a['session_id']}", headers=auth(a)).status_code == 200

        filler.unlink()  # space freed: the very same requests now succeed
        r = put_video(client, a, video, rid="video-a-0001")
        assert r.status_code == 200 and r.json()["state"] == "queued", r.text
        assert put_card(client, b, card2, rid="card-b-00001").status_code == 200

        fill(small_disk)  # full again while the worker certifies: it only reads media
        assert PollingWorker(ctx, name="disk-full-worker").run_once()
        assert assert_decided_once(ctx, [a["session_id"]]) == {a["session_id"]: "accept"}
        png = client.get(f"/api/v1/sessions/{a['session_id']}/certificate.png", headers=auth(a))
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
