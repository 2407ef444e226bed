"""Workers: threads of the API process (``WORKER_MODE=thread``) or standalone processes (`pension-cert worker`,
started by ``serve`` in the embedded default ``WORKER_MODE=process``).

Both poll the database for claimable sessions (queued, or held by a worker that is gone: stale heartbeat or
expired lease) and are woken early by ``wake()`` when the API queues one. The certifier (all models) is
created lazily, once per process. Each worker process writes its heartbeat (service/certification/heartbeat.py); the
threads started by ``start`` are supervised (service/adapters/workers/supervisor.py): one that dies hands its job
back at once and is replaced.

Each thread has a name of its own (``<process heartbeat name>:t<slot>.<serial>``, a replacement a new one): its
claims carry it (``worker_id``), its log lines and its heartbeat row, which alone vouches for the jobs it claims
(``worker_process``). A thread that dies stops beating, so its job is free once its row is stale even if nobody
hands it back; the others' beats do not keep it. Each job runs under a time limit below its lease (job_limit.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update

from pipelines.stop import Stopped, stop_when
from service.adapters.workers.job_limit import Deadline, time_limit_s, warn_if_past_lease
from service.adapters.workers.supervisor import Supervisor
from service.certification import heartbeat as heartbeats
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.heartbeat import Heartbeat
from service.certification.models import CertSession, SessionState
from service.certification.processing import (
    OUTAGE_RETRIES,
    claim,
    give_up_timed_out,
    outage_backoff,
    process,
    worker_name,
)
from service.features.install import install_features
from service.infra.config import CertificationSettings
from service.infra.observability import bind_session, metrics

log = logging.getLogger(__name__)

_CERTIFIER: Certifier | None = None
_CERTIFIER_LOCK = threading.Lock()


def shared_certifier(settings: CertificationSettings | None = None) -> Certifier:
    """The process-wide Certifier: models load once per worker process, on first use, with the settings' model
    pack, face-match calibration file and screen-light mode (default: the environment's). The Celery worker
    (tasks.py) and the embedded ones (serve) all build it here."""
    global _CERTIFIER
    with _CERTIFIER_LOCK:
        if _CERTIFIER is None:
            # Lazy: every model library (≈1.5 s of imports); the API process imports this module without a worker.
            from pipelines.decision.runner import Certifier as PackCertifier  # lazy: the model libraries

            cert = settings or CertificationSettings()
            # The screen-light challenge: "off" issues no sequence; one issued before is measured as in "observe".
            light_mode = "enforce" if cert.light_challenge == "enforce" else "observe"
            certifier = PackCertifier(cert.model_pack, face_calibration=cert.face_calibration, light_mode=light_mode)
            certifier.warm_up()
            _CERTIFIER = certifier
        return _CERTIFIER


@dataclass(frozen=True)
class _ThreadIdentity:
    name: str  # its claims' worker_id (64 characters at most)
    row: str  # its heartbeat row, the claims' worker_process
    heartbeat: Heartbeat


def thread_identity(slot: int, serial: int) -> tuple[str, str]:
    """A worker thread's claim name and heartbeat row name: the process's heartbeat name (host:pid:random) and the
    thread's slot and serial; the claim name keeps the tail (pid, random part, thread) when the host name is long."""
    row = f"{heartbeats.process_name()}:t{slot}.{serial}"
    return row[-64:], row


class PollingWorker:
    def __init__(
        self,
        ctx: ServiceContext,
        certifier_factory: Callable[[], Certifier] | None = None,
        name: str | None = None,
    ) -> None:
        self.ctx = install_features(ctx)  # a worker never runs without the features' decision hooks
        self.name = name or worker_name()
        self._factory = certifier_factory or (lambda: shared_certifier(ctx.settings.certification))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._local = threading.local()
        self._holding: dict[int, str] = {}  # thread ident → the session it is processing
        self._deaths: dict[int, str] = {}  # thread ident → what ended it
        self._threads: dict[threading.Thread, _ThreadIdentity] = {}  # started by ``start``
        self._serial = 0
        self.heartbeat: Heartbeat | None = None
        self.supervisor: Supervisor[threading.Thread] | None = None

    def wake(self, _session_id: str = "") -> None:
        self._wake.set()

    def run_once(self) -> bool:
        """Claim and process one job. True if there was one."""
        name = getattr(self._local, "name", self.name)  # a thread started by ``start``: its own name
        row = getattr(self._local, "row", None)  # … and its own heartbeat row
        sid = None
        retry = getattr(self._local, "retry", None)
        if retry is not None:
            # This thread's own attempt failed (e.g. the database went away while writing the decision): take
            # the job back as soon as the database answers, not when its lease expires, spending no attempt.
            sid = claim(self.ctx, retry, name, reclaim_own=True, holder=row)
            self._local.retry = None
        if sid is None:
            sid = claim(self.ctx, None, name, holder=row)
        if sid is None:
            return False
        me = threading.get_ident()
        self._holding[me] = sid  # left in place if this thread dies: the supervisor hands the job back
        try:
            with bind_session(sid):  # every log line of this job carries its session id
                certifier = self._factory()  # loading the models (a process's first job) is not the job's time
                with stop_when(Deadline(time_limit_s(self.ctx.settings)).passed):
                    process(self.ctx, certifier, sid, name, interrupts=(Stopped,))
            self._local.outages = 0
        except Stopped:
            # Past its time limit, before its lease ends: the pipeline stopped at its next safe point and the job
            # is given up here (an attempt spent, the reason recorded), not left to be taken by another worker
            # while this one still decodes (job_limit.py).
            limit = time_limit_s(self.ctx.settings)
            give_up_timed_out(self.ctx, sid, name, f"the job ran past its time limit ({limit:g} s)")
        except Exception:
            # A database outage, in practice (process() puts back every other failure, an attempt spent): the
            # job is taken back without spending an attempt, after a back-off (at once made a tight loop of log
            # lines), at most OUTAGE_RETRIES times in a row; then it waits out its lease like a lost worker's.
            outages = getattr(self._local, "outages", 0) + 1
            retry_it = outages <= OUTAGE_RETRIES
            self._local.outages = outages if retry_it else 0
            then = f"retry {outages} of {OUTAGE_RETRIES}" if retry_it else "left to its lease"
            log.exception("session %s: processing failed (worker %s), %s", sid, name, then)
            if retry_it:
                self._local.retry = sid
            self._stop.wait(outage_backoff(self.ctx.settings.workers.poll_interval_s, outages))
        self._holding.pop(me, None)
        return True

    def run_forever(self) -> None:
        name = getattr(self._local, "name", self.name)
        log.info("worker %s polling %s", name, self.ctx.engine.url.render_as_string(hide_password=True))
        warn_if_past_lease(self.ctx.settings)
        observability = self.ctx.settings.observability  # a worker of its own (0: off; embedded: via the API)
        metrics.serve_port(
            observability.metrics_port, observability.metrics_token, self.ctx.settings.env == "production"
        )
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker %s: claim failed", name)
                busy = False
            if not busy:
                self._wake.wait(self.ctx.settings.workers.poll_interval_s)
                self._wake.clear()

    def start_heartbeat(self, kind: str = "process") -> Heartbeat:
        """This process's heartbeat (before the first claim, so every job it claims has a row vouching for it)."""
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.ctx, kind)
            self.heartbeat.start()
        return self.heartbeat

    @property
    def heartbeats(self) -> list[Heartbeat]:
        """The heartbeats of the threads started by ``start`` (one each), or this process's."""
        own = [i.heartbeat for i in list(self._threads.values())]
        return own or ([self.heartbeat] if self.heartbeat is not None else [])

    def start(self, threads: int = 1) -> None:
        """``threads`` worker threads in this process (``WORKER_MODE=thread``), supervised, each with its own name
        and heartbeat row (written before it claims anything)."""
        self.supervisor = Supervisor(
            self.ctx.settings, "thread", threads, self._spawn, _thread_alive, self._describe, self._thread_died
        )
        self.supervisor.start()

    def _spawn(self, i: int) -> threading.Thread:
        self._serial += 1  # a replacement is a new thread: a new name, so it never vouches for its predecessor's job
        name, row = thread_identity(i, self._serial)
        t = threading.Thread(target=self._thread_main, args=(name, row), name=f"cert-worker-{i}", daemon=True)
        beat = Heartbeat(self.ctx, "thread", alive=t.is_alive, name=row)
        beat.start()  # its first beat before its first claim
        self._threads[t] = _ThreadIdentity(name, row, beat)
        t.start()
        return t

    def _thread_main(self, name: str, row: str) -> None:
        self._local.name, self._local.row = name, row
        try:
            self.run_forever()
        except BaseException as exc:  # run_forever survives every Exception: this is worse (the thread ends)
            log.critical("worker thread %s (%s) died", threading.current_thread().name, name, exc_info=True)
            self._deaths[threading.get_ident()] = f"{type(exc).__name__}: {exc}"

    def _describe(self, t: threading.Thread) -> str:
        ident = self._threads.get(t)
        label = f"thread {t.name} ({ident.name if ident else '?'})"
        if t.is_alive():
            return label
        return f"{label}, ended by {self._deaths.pop(t.ident or 0, 'an unknown cause')}"

    def _thread_died(self, t: threading.Thread) -> None:
        ident = self._threads.pop(t, None)
        if ident is None:
            return
        ident.heartbeat.stop()  # its row marked stopped: its job is free at once, whatever the hand-back does
        sid = self._holding.pop(t.ident or 0, None)
        if sid is not None:
            hand_back(self.ctx, sid, ident.name, f"worker thread {t.name} ({ident.name}) died")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling. Threads started by ``start``: waited for (up to ``timeout``), then their heartbeats are
        marked stopped. A standalone worker (``run_forever`` in the main thread; this may be called from a
        signal handler) finishes its job in flight, and its caller stops the heartbeat once that returned."""
        if self.supervisor is not None:
            self.supervisor.stop()  # first: a thread ending now is no death to repair
        self._stop.set()
        self._wake.set()
        if self.supervisor is None:
            return
        deadline = time.monotonic() + timeout
        for t in self.supervisor.handles:
            t.join(max(0.0, deadline - time.monotonic()))
        for ident in list(self._threads.values()):
            ident.heartbeat.stop()


def _thread_alive(t: threading.Thread) -> bool:
    return t.is_alive()


def hand_back(ctx: ServiceContext, session_id: str, worker: str, why: str) -> bool:
    """The job of a worker thread that died: queued again at once (its process is alive and beating, so the
    heartbeat cannot free it). As a lost lease would, it counts as an attempt: FAILED (staff) once the
    attempts are used up, so a job that kills its thread every time is not redone forever."""
    give_up = CertSession.job_attempts >= ctx.settings.workers.job_max_attempts
    with ctx.db() as db:
        for final, cond in ((SessionState.FAILED, give_up), (SessionState.QUEUED, ~give_up)):
            res = db.execute(
                update(CertSession)
                .where(
                    CertSession.id == session_id,
                    CertSession.state == SessionState.PROCESSING,
                    CertSession.worker_id == worker,  # still the dead thread's claim
                    cond,
                )
                .values(state=final, lease_until=None, last_error=why[:500])
            )
            if getattr(res, "rowcount", 0):
                log.warning("session %s: %s; job %s", session_id, why, "given up" if final == "failed" else "requeued")
                return True
    return False
