"""Shared pieces of the benchmark scripts: the 5-second 720p selfie clip, unique media per certification,
percentiles, CPU pinning, and a throwaway service (embedded / thread / processes / celery) on loopback.

Nothing here is timed itself; the scripts time what they call.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared" / "models"))
os.environ.setdefault("PENSION_CERT_DATA_DIR", str(REPO.parent / "shared" / "data"))

from service.adapters.cli.demo import DEMO_ACTIONS, DEMO_VIDEO, sample_card  # noqa: E402

# The real webcam video of the demo turns left (0.95 s), right (1.75 s) and nods (4.1 s) in its first 5 s
# (hand-checked labels, tests/pipelines/liveness/data/action_labels.json): its first 5 s, scaled to 1280×960
# and centre-cropped to 1280×720, is a real "5-second 720p selfie" that passes the demo challenge.
CLIP_SOURCE = DEMO_VIDEO
CLIP_SECONDS = 5.0
CLIP_SIZE = (1280, 720)
CLIP_ACTIONS = list(DEMO_ACTIONS)


def data_dir() -> Path:
    return Path(os.environ["PENSION_CERT_DATA_DIR"])


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def summary(values: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, p50, p95, max and mean of a sample (None when empty)."""
    if not len(values):
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(pct(values, 50), digits),
        "p95": round(pct(values, 95), digits),
        "max": round(float(max(values)), digits),
        "mean": round(float(np.mean(values)), digits),
    }


def pin_cores(n: int) -> list[int]:
    """Restrict this process (and the threads and children it starts later) to n of its allowed CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[:n] if n > 0 else allowed
    os.sched_setaffinity(0, chosen)
    return chosen


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- media --------------------------------------------------------------------------------------------------


def make_clip(out: Path, source: Path | None = None, seconds: float = CLIP_SECONDS) -> dict[str, Any]:
    """Re-encode the first `seconds` of a real video as 1280×720 H.264 (libx264 veryfast, CRF 23, 30 fps)."""
    import av

    src = source or data_dir() / CLIP_SOURCE
    w, h = CLIP_SIZE
    frames = 0
    fps = 30
    with av.open(str(src)) as inp, av.open(str(out), "w") as container:
        in_stream = inp.streams.video[0]
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.width, stream.height = w, h
        stream.options = {"preset": "veryfast", "crf": "23"}
        t0: float | None = None
        last: np.ndarray | None = None
        for frame in inp.decode(in_stream):
            if frame.time is None:
                continue
            t0 = frame.time if t0 is None else t0
            t = frame.time - t0
            # The webcam source has a variable frame rate: resample to constant 30 fps (repeat the latest
            # frame up to each output time) so that the clip keeps the real timing of the movements.
            while last is not None and frames / fps < min(t, seconds):
                for packet in stream.encode(av.VideoFrame.from_ndarray(last, format="bgr24")):
                    container.mux(packet)
                frames += 1
            if t >= seconds:
                break
            # Scale to the target width keeping the aspect ratio, then crop the middle rows to 16:9.
            scaled_h = round(frame.height * w / frame.width / 2) * 2
            img: np.ndarray = frame.reformat(width=w, height=scaled_h, format="bgr24").to_ndarray()
            top = max(0, (scaled_h - h) // 2)
            img = np.ascontiguousarray(img[top : top + h])
            if img.shape[0] < h:  # a source wider than 16:9: pad instead
                img = np.pad(img, ((0, h - img.shape[0]), (0, 0), (0, 0)))
            last = img
        while last is not None and frames / fps < seconds:
            for packet in stream.encode(av.VideoFrame.from_ndarray(last, format="bgr24")):
                container.mux(packet)
            frames += 1
        for packet in stream.encode():
            container.mux(packet)
    return {
        "source": str(CLIP_SOURCE if source is None else source),
        "transform": f"first {seconds:g} s, resampled to {fps} fps, scaled to width {w}, centre-cropped to {w}x{h}, "
        "libx264 veryfast crf 23",
        "width": w,
        "height": h,
        "seconds": seconds,
        "frames": frames,
        "bytes": out.stat().st_size,
        "challenge": CLIP_ACTIONS,
    }


def unique_video(base: bytes, i: int) -> bytes:
    """Different bytes (sha256) with the same frames: the service refuses an exact re-upload of a video.
    Demuxers ignore bytes after the last box/cluster, so the decoded video is unchanged."""
    return base + f"\0bench-copy-{i}-{secrets.token_hex(4)}".encode()


def _render(seed: int) -> tuple[bytes, dict[str, str]]:
    card, fields = sample_card(data_dir(), seed=seed)
    return card, {"id_number": fields.id_number, "name": fields.name}


@dataclass
class Cards:
    """Rendered ID-card photos (one beneficiary each), kept as files so the run does not hold them in memory."""

    folder: Path
    fields: list[dict[str, str]] = field(default_factory=list)

    def card(self, i: int) -> bytes:
        return (self.folder / f"card_{i:05d}.jpg").read_bytes()

    def roster_csv(self, prefix: str) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["external_id", "id_number", "name", "benefit_types"])
        for i, f in enumerate(self.fields):
            w.writerow([f"{prefix}{i:05d}", f["id_number"], f["name"], "enterprise_pension"])
        return buf.getvalue().encode()


def render_cards(n: int, folder: Path, seed0: int = 1000, processes: int = 2) -> Cards:
    """n cards from the project's generator around the clip's face, rendered in parallel before any timing."""
    folder.mkdir(parents=True, exist_ok=True)
    cards = Cards(folder)
    seeds = [seed0 + i for i in range(n)]
    if processes > 1 and n > 4:
        with ProcessPoolExecutor(processes) as pool:
            rendered = list(pool.map(_render, seeds, chunksize=8))
    else:
        rendered = [_render(s) for s in seeds]
    seen: set[str] = set()
    spare = seed0 + n
    for i, (jpeg, f) in enumerate(rendered):
        while f["id_number"] in seen:  # a repeated number would be one beneficiary twice: draw another card
            jpeg, f = _render(spare)
            spare += 1
        seen.add(f["id_number"])
        (folder / f"card_{i:05d}.jpg").write_bytes(jpeg)
        cards.fields.append(f)
    return cards


# -- processes ----------------------------------------------------------------------------------------------


def rss_mb(pid: int, key: str = "VmHWM") -> float | None:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used so far (all its threads), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3 of the man page, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_delta(before: dict[str, float | None], after: dict[str, float | None], per: int) -> dict[str, float | None]:
    """CPU seconds per unit of work (e.g. per certification) of each process between two readings."""
    out: dict[str, float | None] = {}
    for role, end in after.items():
        start = before.get(role)
        out[role] = round((end - start) / max(per, 1), 3) if end is not None and start is not None else None
    known = [v for v in out.values() if v is not None]
    out["total"] = round(sum(known), 3) if known else None
    return out


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_up(base: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"service at {base} did not come up in {timeout}s")


SETUPS = ("embedded", "thread", "processes", "celery", "celery-s3")


@dataclass
class Server:
    """A running service: base URL, API key and the processes whose memory is reported."""

    base: str
    api_key: str
    setup: str
    workers: int
    ort_threads: int
    var: Path
    api_pid: int | None = None
    worker_pids: list[int] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    database_url: str | None = None  # PostgreSQL (scale-out set-ups): the capacity figures read its size
    s3_endpoint: str | None = None

    def stored_bytes(self) -> dict[str, int]:
        """Bytes the deployment holds now (PostgreSQL database, media in the bucket or folder), and the
        database's committed transactions so far (every process's, polling included)."""
        out: dict[str, int] = {}
        if self.database_url:
            from sqlalchemy import create_engine, text

            engine = create_engine(self.database_url)
            with engine.connect() as conn:
                out["database"] = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
                commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
                out["database_commits"] = int(conn.execute(text(commits)).scalar_one())
            engine.dispose()
        if self.s3_endpoint:
            from service.infra.storage_s3 import S3Options, make_client

            raw = make_client(S3Options(self.s3_endpoint, "us-east-1", "bench", "bench"))
            pages = raw.get_paginator("list_objects_v2").paginate(Bucket="bench-media")
            out["media"] = sum(o["Size"] for page in pages for o in page.get("Contents", []))
        else:
            out["media"] = sum(p.stat().st_size for p in self.var.rglob("*.enc"))
        return out

    def pids(self) -> dict[str, int]:
        """Role → pid: the API, and each worker (external ones, or the children `serve` started)."""
        out: dict[str, int] = {}
        if self.api_pid is not None:
            out["api+worker" if self.setup == "thread" else "api"] = self.api_pid
            workers = self.worker_pids or children(self.api_pid)
        else:
            workers = self.worker_pids
        for k, pid in enumerate(workers):
            out[f"worker{k}"] = pid
        return out

    def rss(self, key: str = "VmHWM") -> dict[str, float | None]:
        return {role: rss_mb(pid, key) for role, pid in self.pids().items()}

    def cpu(self) -> dict[str, float | None]:
        return {role: cpu_seconds(pid) for role, pid in self.pids().items()}


def service_env(var: Path, api_key: str, worker_mode: str, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PENSION_CERT_ENV="test",
        PENSION_CERT_VAR_DIR=str(var),
        PENSION_CERT_MEDIA_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        PENSION_CERT_SIGNING_KEY=secrets.token_hex(16),
        PENSION_CERT_API_KEYS=json.dumps([api_key]),
        PENSION_CERT_ADMIN_API_KEYS=json.dumps([api_key]),  # the bench also imports the roster (operator)
        PENSION_CERT_WORKER_MODE=worker_mode,
        PENSION_CERT_CHALLENGE_ACTIONS=json.dumps(CLIP_ACTIONS),
        PENSION_CERT_ORT_THREADS=str(threads),
        PYTHONPATH=str(REPO),
    )
    return env


def s3_bucket_env(s3: Any) -> dict[str, str]:
    """Settings of a fresh bucket on the S3 server `s3` (tests/service/servers.S3Server)."""
    from service.infra.storage_s3 import S3Options, make_client

    make_client(S3Options(s3.endpoint, "us-east-1", "bench", "bench")).create_bucket(Bucket="bench-media")
    return {
        "PENSION_CERT_MEDIA_URL": "s3://bench-media/media",
        "PENSION_CERT_S3_ENDPOINT_URL": s3.endpoint,
        "PENSION_CERT_S3_REGION": "us-east-1",
        "PENSION_CERT_S3_ACCESS_KEY_ID": "bench",
        "PENSION_CERT_S3_SECRET_ACCESS_KEY": "bench",
    }


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


@contextmanager
def start_service(
    setup: str, workers: int, ort_threads: int | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start the service on a free loopback port in the given set-up; everything stops on exit.

    embedded: `pension-cert serve` (SQLite, its own `workers` worker processes). thread: one worker thread in
    the API process. processes: the API without worker plus `workers` `pension-cert worker` processes.
    celery: throwaway PostgreSQL (Alembic-migrated) + Redis, the API enqueuing to Redis, and `workers`
    `celery -A service.adapters.workers.tasks worker --pool=solo --concurrency=1` processes. celery-s3: the same with
    the media
    in a bucket of an S3 server on loopback, and every process in its own working and var directory (two hosts
    without a shared disk, simulated: nothing but the database, the broker and the bucket is shared).
    ORT threads per worker: given, else 2 for a single worker and 1 each for more (2 cores in all).
    `extra_env`: more PENSION_CERT_* settings for the API and its workers.
    """
    from tests.service import servers

    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}")
    n_workers = 1 if setup == "thread" else workers
    threads = ort_threads or (2 if n_workers == 1 else 1)
    var = Path(tempfile.mkdtemp(prefix="pension-bench-"))
    api_key = "bench-" + secrets.token_hex(8)
    mode = {"embedded": "process", "thread": "thread", "processes": "none", "celery": "celery"}.get(setup, "celery")
    scaleout = setup in ("celery", "celery-s3")
    env = service_env(var, api_key, mode, threads)
    env["PENSION_CERT_WORKER_PROCESSES"] = str(n_workers)
    env.update(extra_env or {})
    port = servers.free_port()
    base = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "service.adapters.cli"]
    server = Server(base, api_key, setup, n_workers, threads, var)
    procs: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        if not os.environ.get("PENSION_BENCH_KEEP"):  # keep the server's logs and data for a post-mortem
            stack.callback(shutil.rmtree, var, True)
        if scaleout:
            db_url = stack.enter_context(servers.postgres_server(var / "pg"))
            broker = stack.enter_context(servers.redis_server(var / "redis"))
            from service.infra.db.migrate import upgrade

            upgrade(db_url)
            env.update(PENSION_CERT_DATABASE_URL=db_url, PENSION_CERT_BROKER_URL=broker)
            server.database_url = db_url
            server.notes.update(database="postgresql (throwaway, fsync off)", broker="redis (throwaway)")
        else:
            server.notes["database"] = "sqlite"
        homes: dict[str, Path] = {}  # process → its own working directory (celery-s3); else all run in the repo
        if setup == "celery-s3":
            s3 = stack.enter_context(servers.s3_server())
            env.update(s3_bucket_env(s3))
            server.s3_endpoint = s3.endpoint
            server.notes["media"] = "S3 bucket (moto server on loopback); no shared media folder"
            homes = {name: var / name for name in ["api", *(f"worker{k}" for k in range(n_workers))]}
            for home in homes.values():
                home.mkdir()
        log = stack.enter_context((var / "server.log").open("wb"))
        api_env = {**env, "PENSION_CERT_VAR_DIR": str(homes["api"])} if homes else env
        api = subprocess.Popen(
            [*cli, "serve", "--port", str(port)], env=api_env, cwd=homes.get("api", REPO), stderr=log, stdout=log
        )
        procs.append(api)
        server.api_pid = api.pid
        stack.callback(_stop, procs)
        wait_up(base)
        if setup == "processes":
            for k in range(n_workers):
                wlog = stack.enter_context((var / f"worker{k}.log").open("wb"))
                procs.append(subprocess.Popen([*cli, "worker"], env=env, cwd=REPO, stderr=wlog, stdout=wlog))
        elif scaleout:
            for k in range(n_workers):
                wlog = stack.enter_context((var / f"celery{k}.log").open("wb"))
                cmd = [
                    sys.executable, "-m", "celery", "-A", "service.adapters.workers.tasks", "worker", "--pool=solo",
                    "--concurrency=1", "--without-gossip", "--without-mingle", "--loglevel=WARNING",
                    f"--hostname=bench{k}@%h",
                ]  # fmt: skip
                wdir = homes.get(f"worker{k}")
                wenv = {**env, "PENSION_CERT_VAR_DIR": str(wdir)} if wdir else env
                procs.append(subprocess.Popen(cmd, env=wenv, cwd=wdir or REPO, stderr=wlog, stdout=wlog))
        server.worker_pids = [p.pid for p in procs[1:]]
        yield server
