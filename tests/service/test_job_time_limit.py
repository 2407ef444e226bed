"""An embedded worker's job that runs too long (the video's decode slowed: a decoder slow on a pathological video).

The polling workers (WORKER_MODE process / thread) had no per-job time limit: a job still running when its lease
(JOB_LEASE_S) ended was claimed again by another worker while its first holder kept decoding, the same video
processed twice at once (double CPU; the claim kept the decision single). Now the job runs under its time limit
(TASK_SOFT_TIME_LIMIT_S, the limit Celery's tasks are interrupted at: one home), checked by the pipeline at its safe
points (each packet of the video's decode), and is put back as a failed attempt with the reason before its lease
ends, so the next worker takes it up alone.

The limit is cooperative: it was an exception raised into the job's thread from outside, which could land just after
a lock was taken and before the ``try`` that frees it (logging's handler lock), leaving every thread that logs hung.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from pipelines.liveness import video
from pipelines.liveness.video import decode_all
from service.adapters.workers.worker import PollingWorker
from service.certification.contract import Certifier
from service.certification.models import AuditEntry, CertSession, SessionState
from tests.service.certifiers import FixedCertifier
from tests.service.test_worker_threads import queued, thread_ctx

job_log = logging.getLogger("tests.job_time_limit")


@pytest.fixture
def clip(data_dir: Path) -> bytes:
    """A real recording (about 280 packets), decoded by the real frame reader."""
    return (data_dir / "videos" / "liveportrait_source_s18.mp4").read_bytes()


@dataclass
class SlowDecode:
    """Each packet of the video costs ``seconds`` more to decode (in the real reader: ``DecodeBudget.charge`` runs
    once per packet, next to the reader's safe point); 0: the real speed."""

    seconds: float = 0.0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        charge = video.DecodeBudget.charge

        def slow_charge(budget: video.DecodeBudget, packet: Any) -> None:
            time.sleep(self.seconds)
            charge(budget, packet)

        monkeypatch.setattr(video.DecodeBudget, "charge", slow_charge)


@dataclass
class Decoding(FixedCertifier):
    """Decodes the job's video with the pipeline's own reader (as the liveness stage does), logs a line, and tells
    whether another run was under way when this one started."""

    running: int = 0
    overlapped: bool = False

    def run(self, *args: Any) -> Any:
        self.overlapped = self.overlapped or self.running > 0
        self.running += 1
        try:
            job_log.info("decoding the video")  # any log line of the job
            decode_all(args[1])  # (card, video, ...)
            return super().run(*args)
        finally:
            self.running -= 1


def test_a_job_slowed_past_its_lease_is_not_processed_twice_at_once(
    tmp_path: Path, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = thread_ctx(tmp_path)
    w = ctx.settings.workers
    w.job_lease_s, w.task_soft_time_limit_s, w.job_retry_backoff_s = 3, 1.5, 0.0  # the clip decodes in 0.5 s
    slow = SlowDecode(seconds=0.05)  # about 14 s for the whole clip
    slow.install(monkeypatch)
    certifier = Decoding()
    sid = queued(ctx, clip)
    first = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, certifier), name="w-first")
    first_ran: list[float] = []

    def run_first() -> None:
        t0 = time.monotonic()
        first.run_once()
        first_ran.append(time.monotonic() - t0)

    ran = threading.Thread(target=run_first)
    ran.start()
    time.sleep(3.5)  # past the 3 s lease: before, the job was claimable again while its first run went on
    second = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, certifier), name="w-second")
    slow.seconds = 0.0
    # The second run decodes at the real speed, which a loaded CI machine made slower than the 1.5 s limit (the
    # second run was given up too): it runs under a limit and lease it cannot reach.
    w.job_lease_s, w.task_soft_time_limit_s = 120, 60.0
    assert second.run_once()
    ran.join(10)
    assert not ran.is_alive()
    # The first run stopped at its limit, not after its 14 s: the second one ran alone.
    assert not certifier.overlapped
    assert first_ran and first_ran[0] < 5.0, first_ran
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        assert s.state == SessionState.DECIDED and s.worker_id == "w-second", (s.state, s.worker_id)
        assert s.job_attempts == 2  # the run past its limit spent an attempt
        decided = db.scalar(select(func.count()).where(AuditEntry.target == sid, AuditEntry.action == "session.decide"))
    assert decided == 1


def test_a_job_past_its_time_limit_on_its_last_attempt_goes_to_staff_with_the_reason(
    tmp_path: Path, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = thread_ctx(tmp_path)
    w = ctx.settings.workers
    w.task_soft_time_limit_s, w.job_max_attempts = 0.3, 1
    SlowDecode(seconds=0.05).install(monkeypatch)
    sid = queued(ctx, clip)
    t0 = time.monotonic()
    assert PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, Decoding()), name="w1").run_once()
    assert time.monotonic() - t0 < 6.0  # stopped at the limit, not run to its end (about 14 s)
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        assert s.state == SessionState.FAILED, s.state  # before: decided after 14 s, however long it took
        assert s.last_error is not None and s.last_error.startswith("JobTimeLimitExceededError"), s.last_error
        assert "time limit (0.3 s)" in s.last_error


@pytest.fixture
def log_handler() -> Iterator[logging.Handler]:
    """A handler on the job's logger, taken away after the test."""
    handler = logging.StreamHandler(io.StringIO())
    job_log.addHandler(handler)
    job_log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        job_log.removeHandler(handler)
        job_log.setLevel(logging.NOTSET)


def test_a_log_write_stalled_past_the_limit_leaves_no_lock_held(
    tmp_path: Path, clip: bytes, log_handler: logging.Handler
) -> None:
    """Review second, finding 2: the job's line waits for the handler's lock (held by a write stalled for longer
    than the job's limit: a full stdout pipe, a slow log shipper). Before, the interrupt raised into the job's thread
    landed just after the lock was taken, before the ``try`` that frees it: the job was given up with the lock
    still held, and every other thread that logged hung (API threads in WORKER_MODE=thread, the other workers)."""
    ctx = thread_ctx(tmp_path)
    w = ctx.settings.workers
    w.job_lease_s, w.task_soft_time_limit_s, w.job_retry_backoff_s = 30, 0.5, 0.0
    sid = queued(ctx, clip)

    holding = threading.Event()

    def stalled_write() -> None:
        with log_handler.lock:  # type: ignore[union-attr]
            holding.set()
            time.sleep(1.5)

    stalled = threading.Thread(target=stalled_write)
    stalled.start()
    # The job starts only once the write holds the lock (a fixed 0.05 s let a loaded machine start the job first:
    # its line then went through, and it decoded at the real speed against its 0.5 s limit).
    assert holding.wait(30)
    # The job runs in this thread, which outlives it as a worker thread does its jobs (a thread that ends may pass
    # its id to the next one, and a lock it left held would look like that one's own).
    assert PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, Decoding()), name="w-1").run_once()
    stalled.join()
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        # Stopped at the decode's first packet, past the limit: given up with the reason, the lease not waited out.
        assert s.state == SessionState.QUEUED and s.last_error is not None, (s.state, s.last_error)
        assert s.last_error.startswith("JobTimeLimitExceededError"), s.last_error
    other = threading.Thread(target=lambda: job_log.info("another thread's line"), daemon=True)
    other.start()
    other.join(30)  # one line: a hung thread stays hung, a loaded machine's slow one is not taken for it
    assert not other.is_alive(), "another thread hung on the handler's lock"
    assert "another thread's line" in cast(io.StringIO, cast(logging.StreamHandler[Any], log_handler).stream).getvalue()
