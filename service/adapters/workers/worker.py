"""Workers: threads of the API process (``WORKER_MODE=thread``) or standalone processes (`pension-cert worker`,
started by ``serve`` in the embedded default ``WORKER_MODE=process``).

Both poll the database for claimable sessions (queued, or held by a worker that is gone: stale heartbeat or
expired lease) and are woken early by ``wake()`` when the API queues one. The certifier (all models) is
created lazily, once per process. Each worker process writes its heartbeat (service/certification/heartbeat.py); the
threads started by ``start`` are supervised (service/adapters/workers/supervisor.py): one that dies hands its job
back at once
and is replaced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import update

from service.adapters.workers.supervisor import Supervisor
from service.certification.context import ServiceContext
from service.certification.contract import Certifier
from service.certification.heartbeat import Heartbeat
from service.certification.models import CertSession, SessionState
from service.certification.processing import claim, process, worker_name
from service.features.install import install_features
from service.infra.config import CertificationSettings
from service.infra.observability import bind_session, metrics

log = logging.getLogger(__name__)

_CERTIFIER: Certifier | None = None
_CERTIFIER_LOCK = threading.Lock()


def shared_certifier(settings: CertificationSettings | None = None) -> Certifier:
    """The process-wide Certifier: models load once per worker process, on first use, with the settings' model
    pack and face-match calibration file (default: the environment's)."""
    global _CERTIFIER
    with _CERTIFIER_LOCK:
        if _CERTIFIER is None:
            # Lazy: every model library (≈1.5 s of imports); the API process imports this module without a worker.
            from pipelines.decision.runner import Certifier as PackCertifier  # lazy: the model libraries

            cert = settings or CertificationSettings()
            certifier = PackCertifier(cert.model_pack, face_calibration=cert.face_calibration)
            certifier.warm_up()
            _CERTIFIER = certifier
        return _CERTIFIER


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
        self.heartbeat: Heartbeat | None = None
        self.supervisor: Supervisor[threading.Thread] | None = None

    def wake(self, _session_id: str = "") -> None:
        self._wake.set()

    def run_once(self) -> bool:
        """Claim and process one job. True if there was one."""
        sid = None
        retry = getattr(self._local, "retry", None)
        if retry is not None:
            # This thread's own attempt failed (e.g. the database went away while writing the decision): take
            # the job back as soon as the database answers, not when its lease expires. Safe although the
            # threads share one worker name: only this thread knows the id.
            sid = claim(self.ctx, retry, self.name, reclaim_own=True)
            self._local.retry = None
        if sid is None:
            sid = claim(self.ctx, None, self.name)
        if sid is None:
            return False
        me = threading.get_ident()
        self._holding[me] = sid  # left in place if this thread dies: the supervisor hands the job back
        try:
            with bind_session(sid):  # every log line of this job carries its session id
                process(self.ctx, self._factory(), sid, self.name)
        except Exception:
            # A bug in one job must not kill the worker. The job is retried (attempts are counted and capped),
            # after a poll interval: at once, a database error that repeats made a tight loop of log lines.
            log.exception("session %s: processing failed", sid)
            self._local.retry = sid
            self._stop.wait(self.ctx.settings.workers.poll_interval_s)
        self._holding.pop(me, None)
        return True

    def run_forever(self) -> None:
        log.info("worker %s polling %s", self.name, self.ctx.engine.url.render_as_string(hide_password=True))
        observability = self.ctx.settings.observability  # a worker of its own (0: off; embedded: via the API)
        metrics.serve_port(observability.metrics_port, observability.metrics_token)
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker %s: claim failed", self.name)
                busy = False
            if not busy:
                self._wake.wait(self.ctx.settings.workers.poll_interval_s)
                self._wake.clear()

    def start_heartbeat(self, kind: str = "process") -> Heartbeat:
        """This process's heartbeat (before the first claim, so every job it claims has a row vouching for it)."""
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.ctx, kind, alive=self._any_alive)
            self.heartbeat.start()
        return self.heartbeat

    def start(self, threads: int = 1) -> None:
        """``threads`` worker threads in this process (``WORKER_MODE=thread``), supervised, with a heartbeat."""
        self.supervisor = Supervisor(
            self.ctx.settings, "thread", threads, self._spawn, _thread_alive, self._describe, self._thread_died
        )
        self.start_heartbeat("thread")
        self.supervisor.start()

    def _spawn(self, i: int) -> threading.Thread:
        t = threading.Thread(target=self._thread_main, name=f"cert-worker-{i}", daemon=True)
        t.start()
        return t

    def _thread_main(self) -> None:
        try:
            self.run_forever()
        except BaseException as exc:  # run_forever survives every Exception: this is worse (the thread ends)
            log.critical("worker thread %s died", threading.current_thread().name, exc_info=True)
            self._deaths[threading.get_ident()] = f"{type(exc).__name__}: {exc}"

    def _describe(self, t: threading.Thread) -> str:
        if t.is_alive():
            return f"thread {t.name}"
        return f"thread {t.name}, ended by {self._deaths.pop(t.ident or 0, 'an unknown cause')}"

    def _thread_died(self, t: threading.Thread) -> None:
        sid = self._holding.pop(t.ident or 0, None)
        if sid is not None:
            hand_back(self.ctx, sid, self.name, f"worker thread {t.name} died")

    def _any_alive(self) -> bool:
        if self.supervisor is None:  # a standalone worker: the process is the worker (it beats until it ends)
            return True
        return any(t.is_alive() for t in self.supervisor.handles)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling. Threads started by ``start``: waited for (up to ``timeout``), then the heartbeat is
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
        if self.heartbeat is not None:
            self.heartbeat.stop()


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
                    CertSession.worker_id == worker,  # the threads share the name; only the dead one knew the id
                    cond,
                )
                .values(state=final, lease_until=None, last_error=why[:500])
            )
            if getattr(res, "rowcount", 0):
                log.warning("session %s: %s; job %s", session_id, why, "given up" if final == "failed" else "requeued")
                return True
    return False
