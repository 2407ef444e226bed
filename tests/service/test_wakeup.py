"""Worker wake-up datagrams: a listening worker is woken; a dead worker's socket is cleaned up."""

from __future__ import annotations

import socket
import tempfile
import threading
from pathlib import Path

from service.infra import wakeup


def test_notify_wakes_listener_and_removes_dead_sockets() -> None:
    # A short directory: Unix socket paths are limited to ~108 bytes.
    with tempfile.TemporaryDirectory(prefix="wk") as tmp:
        directory = Path(tmp)
        woken = threading.Event()
        sock = wakeup.listen(directory, woken.set)
        assert sock is not None
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead_path = directory / "worker-999999.sock"
        dead.bind(str(dead_path))
        dead.close()  # bound then closed: the file stays, nobody listens

        assert wakeup.notify(directory) == 1
        assert woken.wait(5)
        assert not dead_path.exists()
        sock.close()


def test_notify_without_workers_reaches_none() -> None:
    with tempfile.TemporaryDirectory(prefix="wk") as tmp:
        assert wakeup.notify(Path(tmp) / "missing") == 0
