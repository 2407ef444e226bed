"""Supervision of the embedded workers: a worker thread or process that dies is replaced.

``serve`` runs its workers itself (``WORKER_MODE=process``: `pension-cert worker` child processes;
``thread``: threads of the API process). Without supervision a worker that dies (an exception that escapes
its loop, the OOM killer, a SIGKILL) is never replaced, and once all are gone uploads are acknowledged as
``queued`` forever. The supervisor checks its workers twice a second; a dead one is logged (how it ended),
its job handed back at once (``on_death``), counted in ``pension_cert_worker_restarts_total{mode}`` and
replaced after a back-off: ``WORKER_RESTART_BACKOFF_S``, doubled for each death in a row of a worker that
lived less than ``WORKER_STABLE_S``, at most ``WORKER_RESTART_BACKOFF_MAX_S`` (a worker that crashes at
start, e.g. on a broken model file, does not spin).

Standalone and Celery workers are supervised by systemd or the container runtime (docs/operations.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.infra.config import Settings
from service.infra.observability import metrics

log = logging.getLogger(__name__)

H = TypeVar("H")
CHECK_INTERVAL_S = 0.5


@dataclass
class _Slot(Generic[H]):
    index: int
    handle: H | None = None
    started: float = 0.0
    deaths_in_a_row: int = 0
    restart_at: float = 0.0


class Supervisor(Generic[H]):
    """Keeps ``n`` workers running. ``spawn(i)`` starts worker i and returns its handle, ``alive(h)`` says
    whether it still runs, ``describe(h)`` names it (and how it ended), ``on_death(h)`` cleans up after it (its job, its
    heartbeat row). Called only from the supervisor's own thread (and ``start``)."""

    def __init__(
        self,
        settings: Settings,
        mode: str,
        n: int,
        spawn: Callable[[int], H],
        alive: Callable[[H], bool],
        describe: Callable[[H], str],
        on_death: Callable[[H], None],
    ) -> None:
        self.settings = settings
        self.mode = mode
        self.slots: list[_Slot[H]] = [_Slot(i) for i in range(max(1, n))]
        self._spawn, self._alive, self._describe, self._on_death = spawn, alive, describe, on_death
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    @property
    def handles(self) -> list[H]:
        with self._lock:
            return [s.handle for s in self.slots if s.handle is not None]

    def spawn_all(self) -> None:
        for slot in self.slots:
            self._start_slot(slot)

    def start(self) -> None:
        self.spawn_all()
        self._thread = threading.Thread(target=self._run, name=f"worker-supervisor-{self.mode}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more restarts (the caller then stops the workers themselves)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _start_slot(self, slot: _Slot[H]) -> None:
        handle = self._spawn(slot.index)
        with self._lock:
            slot.handle, slot.started = handle, time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            try:
                self.check()
            except Exception:  # the supervisor itself must outlive anything a worker does
                log.exception("worker supervisor (%s): check failed", self.mode)

    def backoff(self, deaths_in_a_row: int) -> float:
        s = self.settings
        return float(
            min(s.workers.worker_restart_backoff_max_s, s.workers.worker_restart_backoff_s * 2 ** (deaths_in_a_row - 1))
        )

    def check(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if self._stop.is_set():
                return
            if slot.handle is None:
                if now >= slot.restart_at:
                    self._start_slot(slot)
                    self.restarts += 1
                    metrics.WORKER_RESTARTS.labels(self.mode).inc()
                    log.warning(
                        "worker supervisor: %s worker %d restarted: %s",
                        self.mode,
                        slot.index,
                        self._describe(slot.handle) if slot.handle is not None else "?",
                    )
                continue
            if self._alive(slot.handle):
                continue
            dead = slot.handle
            lived = now - slot.started
            slot.deaths_in_a_row = slot.deaths_in_a_row + 1 if lived < self.settings.workers.worker_stable_s else 1
            delay = self.backoff(slot.deaths_in_a_row)
            log.error(
                "worker supervisor: %s worker %d died after %.1fs: %s; restarting in %.1fs",
                self.mode,
                slot.index,
                lived,
                self._describe(dead),
                delay,
            )
            try:
                self._on_death(dead)
            except Exception:
                log.exception("worker supervisor: cleaning up after %s worker %d failed", self.mode, slot.index)
            with self._lock:
                slot.handle, slot.restart_at = None, now + delay
