"""Workers: an in-process thread (embedded default) or a standalone process (`pension-cert worker`).

Both poll the database for claimable sessions (queued, or processing with an expired lease) and are woken
early by ``wake()`` when the API queues one. The certifier (all models) is created lazily, once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from service.context import ServiceContext
from service.observability import bind_session, metrics
from service.processing import claim, process, worker_name

log = logging.getLogger(__name__)

_CERTIFIER: Any = None
_CERTIFIER_LOCK = threading.Lock()


def shared_certifier(pack: str | None = None) -> Any:
    """The process-wide Certifier: models load once per worker process, on first use."""
    global _CERTIFIER
    with _CERTIFIER_LOCK:
        if _CERTIFIER is None:
            from pipelines.decision.runner import Certifier

            _CERTIFIER = Certifier(pack)
            _CERTIFIER.warm_up()
        return _CERTIFIER


class PollingWorker:
    def __init__(
        self,
        ctx: ServiceContext,
        certifier_factory: Callable[[], Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.name = name or worker_name()
        self._factory = certifier_factory or (lambda: shared_certifier(ctx.settings.model_pack))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()

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
        try:
            with bind_session(sid):  # every log line of this job carries its session id
                process(self.ctx, self._factory(), sid, self.name)
        except Exception:
            # A bug in one job must not kill the worker. The job is retried (attempts are counted and capped).
            log.exception("session %s: processing failed", sid)
            self._local.retry = sid
        return True

    def run_forever(self) -> None:
        log.info("worker %s polling %s", self.name, self.ctx.engine.url.render_as_string(hide_password=True))
        metrics.serve_port(self.ctx.settings.metrics_port)  # a worker of its own (0: off; embedded: via the API)
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker %s: claim failed", self.name)
                busy = False
            if not busy:
                self._wake.wait(self.ctx.settings.poll_interval_s)
                self._wake.clear()

    def start(self, threads: int = 1) -> None:
        for i in range(threads):
            t = threading.Thread(target=self.run_forever, name=f"cert-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)
