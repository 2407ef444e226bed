"""A worker killed with SIGKILL in the middle of a certification loses nothing: its lease expires and another
worker process redoes the job, which is applied exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.certification.context import ServiceContext
from service.certification.models import AuditEntry, Certification, CertSession
from tests.service import factories
from tests.service.adapters.http.helpers import open_session, put_card, put_video
from tests.service.conftest import ADMIN
from tests.service.live import REPO, live_service, settings_env, wait_decided
from tests.service.media import LIVE_VIDEO, card_for_video
from tests.service.test_e2e import roster

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "service.adapters.cli", "worker"],
            env=env,
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def test_sigkilled_worker_job_is_redone_by_another(
    backend_urls: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    with live_service(backend_urls, tmp_path, worker_mode="none", job_lease_s=4) as (client, settings):
        card, fields = card_for_video(data_dir, LIVE_VIDEO)
        row = ["KILL-1", fields.id_number, fields.name, "", "enterprise_pension", "", ""]
        client.post("/api/v1/roster", files={"file": ("r.csv", roster([row]), "text/csv")}, headers=ADMIN)
        s = open_session(client, "KILL-1")
        assert put_card(client, s, card).status_code == 200
        assert put_video(client, s, (data_dir / LIVE_VIDEO).read_bytes()).json()["state"] == "queued"

        ctx = ServiceContext(settings, schema=None)
        env = settings_env(settings)
        first = start_worker(env, tmp_path / "worker1.log")
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with ctx.db() as db:
                    row_ = db.get(CertSession, s["session_id"])
                    assert row_ is not None
                    state, owner = row_.state, row_.worker_id
                if state == "processing" and owner and owner.endswith(f":{first.pid}"):
                    break
                assert first.poll() is None, (tmp_path / "worker1.log").read_text()
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        with ctx.db() as db:
            killed = db.get(CertSession, s["session_id"])
            assert killed is not None and killed.state == "processing" and killed.decision is None

        second = start_worker(env, tmp_path / "worker2.log")
        try:
            result = wait_decided(client, s, timeout=120)
        finally:
            second.terminate()
            second.wait(20)
        assert result["decision"] == "accept", result
        with ctx.db() as db:
            done = db.get(CertSession, s["session_id"])
            assert done is not None and done.job_attempts == 2 and (done.worker_id or "").endswith(f":{second.pid}")
            assert db.scalar(select(func.count()).select_from(Certification)) == 1
            decides = db.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "session.decide")
            )
            assert decides == 1


def test_job_that_kills_every_worker_goes_to_staff(ctx: ServiceContext, db: Session, data_dir: Path) -> None:
    """After job_max_attempts lost leases the session is FAILED (staff review), not retried forever."""
    from service.certification.processing import claim

    sid = factories.held_job(db, ctx, None, lease_s=-1, attempts=ctx.settings.workers.job_max_attempts)
    s = db.get(CertSession, sid)
    assert s is not None
    assert claim(ctx, s.id, "w") is None
    db.refresh(s)
    assert s.state == "failed" and s.last_error
