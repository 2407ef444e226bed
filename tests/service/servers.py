"""Throwaway PostgreSQL and Redis servers for the scale-out variant of the suite (real Debian binaries).

Each runs from a temporary directory on a free loopback port and is stopped at the end of the session.
PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` system user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def postgres_available() -> bool:
    return _pg_bin("initdb") is not None and _pg_bin("pg_ctl") is not None


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yields a SQLAlchemy URL of a fresh database ``pension_cert_test``."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
    if os.geteuid() == 0:
        # The postgres user cannot enter root's private pytest directories: use its own under /tmp.
        workdir = Path(tempfile.mkdtemp(prefix="pension-cert-pg-"))
        shutil.chown(workdir, "postgres")
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "pgdata"
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run(
        _as_pg_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
        env=env,
    )
    opts = f"-p {port} -h 127.0.0.1 -k {workdir} -F -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_pg_user([pg_ctl, "-D", str(data), "-o", opts, "-l", str(workdir / "pg.log"), "-w", "start"]),
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        _wait_port(port)
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE pension_cert_test",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/pension_cert_test"
    finally:
        subprocess.run(_as_pg_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        if os.geteuid() == 0:
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


class S3Server:
    """An S3-compatible server (moto's, from PyPI) in its own process on a loopback port.

    moto keeps objects in memory, where a real store keeps them on disk: `kill(keep=True)` copies every bucket
    out first and the next `start` puts them back, so a restart loses nothing (as with MinIO or Ceph);
    `kill()` alone is a store that lost its disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._kept: dict[str, dict[str, bytes]] = {}

    def client(self) -> Any:
        from service.infra.storage_s3 import S3Options, make_client

        return make_client(S3Options(self.endpoint, "us-east-1", "test", "test", max_attempts=2))

    def start(self) -> S3Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port)
        if self._kept:
            raw = self.client()
            for bucket, objects in self._kept.items():
                raw.create_bucket(Bucket=bucket)
                for key, blob in objects.items():
                    raw.put_object(Bucket=bucket, Key=key, Body=blob)
            self._kept = {}
        return self

    def kill(self, keep: bool = False) -> None:
        if self.proc is None:
            return
        if keep:
            raw = self.client()
            for bucket in [b["Name"] for b in raw.list_buckets().get("Buckets", [])]:
                listed = raw.list_objects_v2(Bucket=bucket).get("Contents", [])
                self._kept[bucket] = {
                    o["Key"]: raw.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed
                }
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = S3Server().start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def s3_media(ctx: Any, versioned: bool = False) -> Iterator[Any]:
    """``ctx`` (a ServiceContext) with its media in bucket ``media`` (prefix ``p``) of a fresh S3 server;
    ``versioned``: with versioning on, as docs/operations.md asks for the audit anchors."""
    from service.infra.storage_s3 import S3EncryptedStorage, S3Location, S3Options, make_client

    with s3_server() as server:
        options = S3Options(server.endpoint, "us-east-1", "test", "test")
        raw = make_client(options)
        raw.create_bucket(Bucket="media")
        if versioned:
            raw.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
        ctx.storage = S3EncryptedStorage(S3Location("media", "p"), os.urandom(32), options)
        yield ctx
