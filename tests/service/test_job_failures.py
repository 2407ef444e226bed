"""Failed attempts of a job, and how it is taken up again.

- A job whose processing raises an unexpected error (a bug on this input: the models choke on a video, a hook
  fails) is retried a bounded number of times, after a back-off, and then goes to staff as ``failed`` with the
  error. Before, the polling worker took its failed job straight back (``claim(..., reclaim_own=True)``) with no
  cap on the attempts, so one poison video kept a worker thread redoing it in a tight loop, the session
  ``processing`` for ever; a Celery task failing the same way left the job to wait out three leases (15 min) and
  then go to staff as "worker lost on every attempt".
- A Celery task's retry after a database error takes its job back at once in whichever worker process it lands
  (before: only in the process of the failed attempt), and a pool with no connection free is retried too.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.adapters.workers import tasks
from service.adapters.workers.tasks import process_session
from service.adapters.workers.worker import PollingWorker
from service.certification import processing
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.models import CertSession, Channel, SessionState
from service.certification.processing import OUTAGE_RETRIES, claim, process
from service.certification.sessions import create_session
from tests.service import factories
from tests.service.certifiers import FixedCertifier

NUMBER = "11010519491231002X"  # an ID number in the error's text (a value the failing code quoted)


class Poison:
    """The models fail on this input the same way every time."""

    def __init__(self) -> None:
        self.runs = 0

    def run(self, *_args: Any) -> Any:
        self.runs += 1
        raise ValueError(f"operands could not be broadcast together, read {NUMBER}")


def queued_job(ctx: ServiceContext) -> str:
    with ctx.db() as db:
        b = factories.beneficiary(db, ctx.keyring)
        s = create_session(db, ctx, b, Channel.SELF, False, "test").session
        s.id_card_key, s.video_key = f"sessions/{s.id}/id_card", f"sessions/{s.id}/video"
        ctx.storage.put(s.id_card_key, b"card")
        ctx.storage.put(s.video_key, b"video")
        s.state = SessionState.QUEUED
        return s.id


def row(ctx: ServiceContext, sid: str) -> CertSession:
    with ctx.db() as db:
        s = db.get(CertSession, sid)
        assert s is not None
        db.expunge(s)
        return s


def test_a_poison_job_in_the_polling_worker_goes_to_staff_after_the_attempts(
    ctx: ServiceContext, caplog: pytest.LogCaptureFixture
) -> None:
    ctx.settings.workers.job_retry_backoff_s = 0
    before = REGISTRY.get_sample_value("pension_cert_jobs_failed_total", {"cause": "error"}) or 0.0
    poison = Poison()
    worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, poison), name="w1")
    sid = queued_job(ctx)
    with caplog.at_level(logging.WARNING, logger="service.certification.processing"):
        for _ in range(3 * ctx.settings.workers.job_max_attempts):
            if not worker.run_once():
                break
    s = row(ctx, sid)
    assert poison.runs == ctx.settings.workers.job_max_attempts  # before: redone on every call, no end
    assert (s.state, s.job_attempts) == (SessionState.FAILED, ctx.settings.workers.job_max_attempts)
    assert s.last_error is not None and "ValueError" in s.last_error
    assert NUMBER[:14] not in s.last_error  # shown to staff: masked
    # Going to staff is said once, at ERROR, and counted (before: a WARNING like any attempt's, no metric).
    assert REGISTRY.get_sample_value("pension_cert_jobs_failed_total", {"cause": "error"}) == before + 1
    gone = [r for r in caplog.records if r.levelno == logging.ERROR and "left to staff" in r.getMessage()]
    assert len(gone) == 1 and sid in gone[0].getMessage() and "ValueError" in gone[0].getMessage()
    assert all(NUMBER[:14] not in r.getMessage() for r in caplog.records if r.name == processing.__name__)


def test_a_poison_job_waits_a_back_off_between_attempts(ctx: ServiceContext) -> None:
    ctx.settings.workers.job_retry_backoff_s = 60
    poison = Poison()
    sid = queued_job(ctx)
    assert claim(ctx, sid, "w1") == sid
    process(ctx, cast(Certifier, poison), sid, "w1")  # before: the error escaped, the job left processing
    s = row(ctx, sid)
    assert (s.state, s.job_attempts) == (SessionState.QUEUED, 1)
    assert claim(ctx, None, "w2") is None  # not before the back-off


def test_a_poison_job_in_a_celery_task_goes_to_staff_after_the_attempts(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.workers.job_retry_backoff_s = 0
    poison = Poison()
    monkeypatch.setattr("service.adapters.workers.tasks._worker_ctx", lambda: ctx)
    monkeypatch.setattr("service.adapters.workers.tasks.shared_certifier", lambda _s: poison)
    sid = queued_job(ctx)
    for _ in range(ctx.settings.workers.job_max_attempts):
        # Each announcement (the sweep's) runs the task; before: the task failed and the job stayed processing,
        # not claimable again until its lease expired.
        assert process_session.apply(args=(sid,)).get() == "done"
    s = row(ctx, sid)
    assert (s.state, s.job_attempts) == (SessionState.FAILED, ctx.settings.workers.job_max_attempts)
    assert process_session.apply(args=(sid,)).get() == "not-claimable"


def _task_failing_once(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, error: Exception) -> FixedCertifier:
    """The Celery task run eagerly on `ctx`, its first call of `process` failing with `error`; the certifier."""
    certifier = FixedCertifier()
    failures = iter([error])
    real_process = processing.process

    def flaky(*args: Any, **kwargs: Any) -> bool:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_process(*args, **kwargs)

    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    monkeypatch.setattr(tasks, "shared_certifier", lambda _s: certifier)
    monkeypatch.setattr("service.adapters.workers.tasks.process", flaky)
    return certifier


def test_a_celery_tasks_retry_in_another_worker_process_takes_its_job_back(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task whose database write failed is retried with its task id, by whichever process the broker hands the
    retry to (prefork children, other hosts). Before: the attempt's name carried the process (host:pid), so a
    retry landing elsewhere could not take the lease back and the job waited for it to expire (300 s)."""
    processes = iter(["hostA:101", "hostB:202"])  # the first attempt's process, then the retry's
    certifier = _task_failing_once(ctx, monkeypatch, OperationalError("UPDATE", {}, Exception("connection closed")))
    monkeypatch.setattr(tasks, "worker_name", lambda: next(processes))
    sid = queued_job(ctx)
    tasks.process_session.apply(args=(sid,))  # eager: the autoretry runs at once, in the "other process"
    s = row(ctx, sid)
    assert (s.state, s.decision, s.job_attempts) == (SessionState.DECIDED, "accept", 1)  # the retry spent none
    assert certifier.runs == 1


def test_a_celery_task_with_no_pooled_database_connection_free_is_retried(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database pool exhausted for a moment (QueuePool's TimeoutError) is the database's outage, as a dropped
    connection is: the task retries and takes its job back. Before: the task failed and the job waited out its
    lease (300 s)."""
    _task_failing_once(ctx, monkeypatch, PoolTimeoutError("QueuePool limit of size 5 overflow 10 reached"))
    sid = queued_job(ctx)
    tasks.process_session.apply(args=(sid,))
    s = row(ctx, sid)
    assert (s.state, s.decision, s.job_attempts) == (SessionState.DECIDED, "accept", 1)


def test_a_job_failing_with_a_database_error_every_time_is_not_taken_back_for_ever(ctx: ServiceContext) -> None:
    """A database error on a live database while the decision is applied, the same every time (a statement or
    lock timeout on this job's rows): the polling worker took the job straight back after each failure, without
    a bound, job_attempts growing for ever and the worker thread spinning on it. Taking it back spends no attempt
    (a database error is the database's, tests/service/test_database_outage.py), so the free retries are bounded
    instead: OUTAGE_RETRIES, after a back-off each; then it waits out its lease as a lost worker's job."""
    ctx.settings.workers.poll_interval_s = 0
    applied: list[str] = []

    def timeout(_db: Any, _ctx: Any, s: CertSession, *_rest: Any) -> bool:
        applied.append(s.id)
        raise OperationalError("UPDATE …", {}, Exception("canceling statement due to statement timeout"))

    ctx.hooks.decided["timeout"] = timeout
    try:
        worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, FixedCertifier()), name="w-db")
        sid = queued_job(ctx)
        for _ in range(OUTAGE_RETRIES + 5):
            if not worker.run_once():
                break
    finally:
        del ctx.hooks.decided["timeout"]
    s = row(ctx, sid)
    assert len(applied) == OUTAGE_RETRIES + 1  # before this bound: once per call, no end
    # It waits out its lease; the claim after that counts an attempt, and a job lost on every attempt goes to
    # staff (give_up_exhausted).
    assert (s.job_attempts, s.state) == (1, SessionState.PROCESSING)
