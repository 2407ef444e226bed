"""Shared pieces of the fault tests: real beneficiaries and media, timed uploads, and the exactly-once checks."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Certification, CertSession
from tests.service.adapters.http.helpers import put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_e2e import roster

# The long variant (scripts/faults.sh): more sessions and repeated outages.
LONG = os.environ.get("PENSION_CERT_FAULTS_LONG", "") == "1"
# An API call while a dependency is down must answer within this (no hang on the broker or the database).
QUICK_S = 10.0


def enrol(client: TestClient, data_dir: Path, prefix: str, n: int) -> list[tuple[str, bytes]]:
    """n beneficiaries, each with an ID card rendered around the face of the real test video."""
    people, rows = [], []
    for i in range(n):
        card, fields = card_for_video(data_dir, LIVE_VIDEO, seed=7 + i)
        ext = f"{prefix}-{i}"
        rows.append([ext, fields.id_number, fields.name, "", "enterprise_pension", "", ""])
        people.append((ext, card))
    r = client.post("/api/v1/roster", files={"file": ("r.csv", roster(rows), "text/csv")}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["created"] == n, r.text
    return people


def video_copy(data_dir: Path, i: int) -> bytes:
    """The real selfie video with a distinct tail: decodes the same, but is not refused as a re-upload."""
    return (data_dir / LIVE_VIDEO).read_bytes() + f"\0fault-copy-{i}".encode()


def timed_upload(client: TestClient, s: dict[str, Any], card: bytes, video: bytes) -> float:
    """Card then video; both must be acknowledged. Returns the seconds the two requests took."""
    t0 = time.monotonic()
    r = put_card(client, s, card)
    assert r.status_code == 200, r.text
    r = put_video(client, s, video)
    assert r.status_code == 200 and r.json()["state"] == "queued", r.text
    return time.monotonic() - t0


def assert_stored(ctx: ServiceContext, session_id: str, video: bytes) -> None:
    """An acknowledged upload: the row is queued (the job exists) and both media decrypt from the store."""
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        assert s is not None and s.state in ("queued", "processing", "decided"), s and s.state
        assert s.id_card_key and s.video_key
        card_key, video_key = s.id_card_key, s.video_key
    assert ctx.storage.get(video_key) == video
    assert ctx.storage.get(card_key)


def assert_decided_once(ctx: ServiceContext, session_ids: list[str]) -> dict[str, str]:
    """Every session decided, one decision audit entry each, one certification per accepted session."""
    decisions: dict[str, str] = {}
    with ctx.db() as db:
        for sid in session_ids:
            s = db.get(CertSession, sid)
            assert s is not None and s.state == "decided" and s.decision, (sid, s and s.state)
            decides = db.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "session.decide", AuditEntry.target == sid)
            )
            certs = db.scalar(select(func.count()).select_from(Certification).where(Certification.session_id == sid))
            assert decides == 1, (sid, decides)
            assert certs == (1 if s.decision == "accept" else 0), (sid, s.decision, certs)
            decisions[sid] = s.decision
    return decisions


def state_of(ctx: ServiceContext, session_id: str) -> str:
    with ctx.db() as db:
        s = db.get(CertSession, session_id)
        return s.state if s is not None else "missing"


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout}s")


def wait_worker_ready(log: Path, timeout: float = 120.0) -> None:
    """A `celery worker` has connected to the broker and consumes (its "ready." line)."""
    wait_for(lambda: log.exists() and " ready." in log.read_text(errors="replace"), timeout, f"worker ready ({log})")
