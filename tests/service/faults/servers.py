"""Restartable throwaway servers for fault tests: each test owns its own, so stopping it disturbs nobody.

A restart keeps the port (and, for PostgreSQL, the data directory): clients configured with the URL must find
the server again by themselves, as they would after a crash or maintenance restart in production.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.service.servers import _as_pg_user, _pg_bin, _wait_port, free_port


def _wait_closed(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"127.0.0.1:{port} still accepts connections after {timeout}s")


class RedisServer:
    """redis-server without persistence: a stop loses every queued message, the worst case for the broker."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen([*cmd, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT)
        _wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes mid-conversation, queued and unacknowledged messages are lost."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        _wait_closed(self.port)


class PostgresServer:
    """A PostgreSQL cluster in its own directory; ``stop`` is ``pg_ctl stop -m fast`` (clients disconnected)."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.pg_ctl = pg_ctl
        # The postgres user (PostgreSQL refuses root) cannot enter root's private pytest directories.
        self.workdir = Path(tempfile.mkdtemp(prefix="pension-cert-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres")
        self.data = self.workdir / "pgdata"
        self.port = free_port()
        self.env = {**os.environ, "LC_ALL": "C.UTF-8"}
        cmd = [initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run(_as_pg_user(cmd), check=True, capture_output=True, env=self.env)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_pg_user([self.pg_ctl, "-D", str(self.data), *args]), check=True, capture_output=True)

    def start(self) -> None:
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.workdir} -F -c fsync=off -c full_page_writes=off"
        log = str(self.workdir / "pg.log")
        subprocess.run(
            _as_pg_user([self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", log, "-w", "start"]),
            check=True,
            capture_output=True,
            env=self.env,
        )
        _wait_port(self.port)

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")
        _wait_closed(self.port)

    def remove(self) -> None:
        subprocess.run(_as_pg_user([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
