"""Stopping a long pipeline run at a caller's request, at safe points (cooperative: nothing is interrupted).

The pipelines are pure functions of media and know nothing of jobs, leases or workers. A caller that must stop a
run early (the service's polling worker at its job's time limit) gives a ``should_stop`` callable for the run's
scope (``stop_when``); the long loops check it where nothing is half done (each packet the video decoder is given
and each frame handed to the analysis: liveness/video.py; between the certification's stages: decision/runner.py)
and raise ``Stopped``, an ordinary exception that unwinds every ``with`` and ``finally`` on its way (decoders,
threads, locks). Without a scope nothing is checked: the offline commands, the upload probe and Celery's tasks
(stopped by Celery itself) run as before.

Why not interrupt the thread from outside (``PyThreadState_SetAsyncExc``): such an exception lands at whatever
Python instruction runs, e.g. just after logging's ``Handler.handle`` acquired the handler's lock and before the
``try`` that releases it, and the lock stays held for ever: every other thread that logs then hangs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ShouldStop = Callable[[], bool]

# The scope's check. A context variable: each thread starts without one, so a worker thread's limit never stops
# another thread's run; a reader made in the scope keeps the check for its own decoding thread (VideoReader).
_scope: ContextVar[ShouldStop | None] = ContextVar("pipelines_should_stop", default=None)


class Stopped(Exception):
    """The run was stopped at a safe point because its caller asked (``should_stop``): not the media's fault."""


@contextmanager
def stop_when(should_stop: ShouldStop) -> Iterator[None]:
    """Runs started in this block (in this thread) stop at their next safe point once ``should_stop()`` is true."""
    token = _scope.set(should_stop)
    try:
        yield
    finally:
        _scope.reset(token)


def current() -> ShouldStop | None:
    """The check of the calling thread's scope, None outside ``stop_when``."""
    return _scope.get()


def checkpoint(should_stop: ShouldStop | None = None) -> None:
    """A safe point: ``Stopped`` if ``should_stop`` (default: the scope's check) says the run must end."""
    check = should_stop if should_stop is not None else _scope.get()
    if check is not None and check():
        raise Stopped("the run was stopped by its caller")
