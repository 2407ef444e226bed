"""A database that flaps while jobs run spends none of their attempts.

The job's attempts (JOB_MAX_ATTEMPTS, 3) are for the job: a video the models choke on goes to staff after them.
Before, every retry after a database error (connection refused, a dropped connection) took the job back with
``claim(..., reclaim_own=True)``, which counted an attempt: a few minutes of a flapping database turned a
pensioner's good video into a FAILED job. The outage here is real: the context's sessions go to a database that
cannot be opened (sqlite3's "unable to open database file", an OperationalError) while the certifier runs, and
come back before the next try.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import service.schema
from service.adapters.workers import tasks
from service.adapters.workers.worker import PollingWorker
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.heartbeat import Heartbeat
from service.certification.models import SessionState
from service.certification.processing import claim
from service.features.install import install_features
from service.infra.db.engine import make_engine
from tests.service import factories
from tests.service.certifiers import FixedCertifier
from tests.service.conftest import make_settings
from tests.service.live import fresh_database
from tests.service.test_job_failures import Poison, queued_job, row
from tests.service.test_worker_liveness import age, worker_row


class Flapping:
    """A certifier during whose first ``flaps`` runs the database goes away for the next ``units`` units of work
    (the decision hooks' read, the decision's write or the job's release, a retry's claim: whichever come next),
    each failing for real; then it is back."""

    def __init__(self, ctx: ServiceContext, tmp_path: Path, flaps: int, units: int = 2) -> None:
        self.ctx, self.flaps, self.units, self.runs, self.down = ctx, flaps, units, 0, 0
        self.live = ctx.session_factory
        dead = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'gone.db'}")
        self.dead = sessionmaker(bind=dead, expire_on_commit=False)
        ctx.session_factory = self._session  # type: ignore[assignment]

    def run(self, *args: Any) -> Any:
        self.runs += 1
        if self.runs <= self.flaps:
            self.down = self.units
        return FixedCertifier().run(*args)

    def _session(self) -> Session:
        if self.down:
            self.down -= 1
            return self.dead()
        return self.live()


@pytest.fixture
def file_ctx(tmp_path: Path) -> ServiceContext:
    url = fresh_database({"database_url": f"sqlite:///{tmp_path / 'o.db'}"}, tmp_path)
    settings = make_settings(tmp_path / "var", database_url=url, poll_interval_s=0.0, job_retry_backoff_s=0)
    return install_features(ServiceContext(settings, schema=service.schema.metadata))


def test_a_flapping_database_spends_no_attempts_in_the_polling_worker(file_ctx: ServiceContext, tmp_path: Path) -> None:
    ctx = file_ctx
    flaps = ctx.settings.workers.job_max_attempts + 2  # more outages than the job has attempts
    outage = Flapping(ctx, tmp_path, flaps)
    worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, outage), name="w1")
    sid = queued_job(ctx)
    for _ in range(10 * flaps):
        with contextlib.suppress(OperationalError):  # a claim that met the outage: run_forever logs it, polls again
            worker.run_once()
        s = row(ctx, sid)
        assert s.job_attempts <= 1, (outage.runs, s.state)  # before: one more after each outage
        if s.state == SessionState.DECIDED:
            break
    assert (s.state, s.decision, s.job_attempts) == (SessionState.DECIDED, "accept", 1)
    assert outage.runs == flaps + 1


def test_a_flapping_database_spends_no_attempts_in_a_celery_task(
    file_ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = file_ctx
    outage = Flapping(ctx, tmp_path, ctx.settings.workers.job_max_attempts + 1)
    monkeypatch.setattr(tasks, "_worker_ctx", lambda: ctx)
    monkeypatch.setattr(tasks, "shared_certifier", lambda _s: outage)
    sid = queued_job(ctx)
    tasks.process_session.apply(args=(sid,))  # eager: the autoretries run at once
    s = row(ctx, sid)
    # Before: the third retry found the attempts spent ("not-claimable") and the job waited out its lease.
    assert (s.state, s.decision, s.job_attempts) == (SessionState.DECIDED, "accept", 1)
    assert outage.runs == outage.flaps + 1


def test_media_errors_still_spend_attempts(file_ctx: ServiceContext) -> None:
    ctx = file_ctx
    poison = Poison()
    worker = PollingWorker(ctx, certifier_factory=lambda: cast(Certifier, poison), name="w1")
    sid = queued_job(ctx)
    for _ in range(3 * ctx.settings.workers.job_max_attempts):
        if not worker.run_once():
            break
    s = row(ctx, sid)
    assert (s.state, s.job_attempts) == (SessionState.FAILED, ctx.settings.workers.job_max_attempts)


def test_after_a_long_outage_a_holder_silent_through_it_is_not_taken_for_dead(
    file_ctx: ServiceContext, tmp_path: Path
) -> None:
    """An outage longer than WORKER_STALE_S: no worker could write its heartbeat, so every job in flight looks
    abandoned when the database is back. Before, the first claim took such a job over (an attempt spent, the holder's
    work thrown away) and gave up a job on its last attempt as "worker lost". A worker whose own heartbeat failed
    within WORKER_STALE_S does not read another's silence as death (a stopped row or an expired lease still free the
    job); the holders have beaten again by then."""
    ctx = file_ctx
    ctx.settings.workers.worker_stale_s = 1.0
    with ctx.db() as db:
        holder = worker_row(db, "hostA", 101)
        sid = factories.held_job(db, ctx, holder)
        last = factories.held_job(db, ctx, holder, attempts=ctx.settings.workers.job_max_attempts)
    age(ctx, holder, 60)  # silent through the outage
    # This process's own heartbeat failed for real a moment ago: the same outage, now over.
    outage = Flapping(ctx, tmp_path, flaps=0)
    outage.down = 1
    assert not Heartbeat(ctx, "process").beat_once()
    assert claim(ctx, None, "thief") is None  # before: took sid over
    assert row(ctx, last).state == SessionState.PROCESSING  # before: FAILED, "worker lost on every attempt"
    time.sleep(1.1)  # WORKER_STALE_S since this process last failed to beat: silence is death again
    assert claim(ctx, sid, "thief") == sid
