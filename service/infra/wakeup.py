"""Wake the embedded worker processes as soon as a job is committed, instead of at their next database poll.

Each `pension-cert worker` started by `serve` binds a Unix datagram socket in ``var_dir/run/wake``; the API sends
one empty datagram to every socket there after an upload is committed. The database stays the queue: a lost
datagram only means the job starts at the next poll. Sockets of workers that died are removed by the sender.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from service.infra.config import Settings

log = logging.getLogger(__name__)


def socket_dir(settings: Settings) -> Path:
    return Path(settings.var_dir) / "run" / "wake"


def listen(directory: Path, on_wake: Callable[[], None]) -> socket.socket | None:
    """Bind this process's wake socket and call ``on_wake`` from a daemon thread for every datagram."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"worker-{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
    except OSError as exc:  # e.g. a path longer than sun_path allows: polling alone still works
        log.warning("worker wake-up socket unavailable (%s); relying on polling", exc)
        return None

    def loop() -> None:
        while True:
            try:
                sock.recv(16)
            except OSError:
                return
            on_wake()

    threading.Thread(target=loop, name="worker-wakeup", daemon=True).start()
    return sock


def notify(directory: Path) -> int:
    """Nudge every listening worker; returns how many were reached."""
    reached = 0
    try:
        paths = list(directory.glob("worker-*.sock"))
    except OSError:
        return 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in paths:
            try:
                sock.sendto(b"", str(path))
                reached += 1
            except ConnectionRefusedError:  # its worker is gone
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError:  # a full buffer means that worker has wake-ups pending anyway
                continue
    return reached


def notifier(directory: Path) -> Callable[[str], None]:
    """An ``enqueue`` callback for the service context: the session id is not needed, the database has it."""

    def enqueue(_session_id: str) -> None:
        notify(directory)

    return enqueue
