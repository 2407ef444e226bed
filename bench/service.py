"""End-to-end service benchmark: certifications per minute through the HTTP API on this machine, latency
from the acknowledged video upload to the decision (p50/p95), and worker memory (peak RSS).

    python bench/service.py --n 20 --setup embedded --out bench/results/service.json
    python bench/service.py --n 20 --setup thread --out bench/results/service.json

`embedded`: `pension-cert serve` on its defaults (SQLite, local encrypted storage, 2 worker processes that
it starts itself, polling the same database). `thread`: the same with one worker thread inside the API
process. `processes`: the API with its worker off plus --workers `pension-cert worker` processes.
Each certification uses its own rendered ID card and its own copy of a real selfie video (re-muxed bytes:
the service refuses an exact duplicate), so every one runs the full pipeline. Results merge into --out by
setup name.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures as cf
import csv
import datetime as dt
import io
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.demo import DEMO_ACTIONS, DEMO_VIDEO, sample_card, upload_media  # noqa: E402

API_KEY = "bench-" + secrets.token_hex(8)


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def service_env(var: Path, worker_mode: str, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PENSION_CERT_ENV="test",
        PENSION_CERT_VAR_DIR=str(var),
        PENSION_CERT_MEDIA_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        PENSION_CERT_SIGNING_KEY=secrets.token_hex(16),
        PENSION_CERT_API_KEYS=json.dumps([API_KEY]),
        PENSION_CERT_WORKER_MODE=worker_mode,
        PENSION_CERT_CHALLENGE_ACTIONS=json.dumps(DEMO_ACTIONS),
        PENSION_CERT_ORT_THREADS=str(threads),
        PENSION_CERT_POLL_INTERVAL_S="0.2",
    )
    env.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared" / "models"))
    return env


def wait_up(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("service did not come up")


def certify_one(base: str, ext: str, card: bytes, video: bytes) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=120) as c:
        s = c.post("/api/v1/sessions", json={"external_id": ext}).json()
        sid = s["session_id"]
        auth = upload_media(c, s, card, video)
        acked = time.time()
        while True:
            res = c.get(f"/api/v1/sessions/{sid}", headers=auth).json()
            if res["state"] in ("decided", "failed"):
                break
            time.sleep(0.1)
        decided = dt.datetime.fromisoformat(res["decided_at"].rstrip("Z")).replace(tzinfo=dt.UTC).timestamp()
        return {"acked": acked, "decided": decided, "done": time.time(), "decision": res["decision"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(os.environ.get("PENSION_CERT_DATA_DIR", REPO.parent / "shared" / "data"))
    video = (data_dir / DEMO_VIDEO).read_bytes()
    cards = [sample_card(data_dir, seed=1000 + i) for i in range(args.n)]
    var = Path(tempfile.mkdtemp(prefix="pension-bench-"))
    port = 8800 + secrets.randbelow(100)
    base = f"http://127.0.0.1:{port}"
    threads = args.ort_threads if args.setup == "thread" else 1
    mode = {"embedded": "process", "thread": "thread", "processes": "none"}[args.setup]
    env = service_env(var, mode, threads)
    env["PENSION_CERT_WORKER_PROCESSES"] = str(args.workers)
    cli = [sys.executable, "-m", "service.cli"]
    log = (var / "server.log").open("wb")
    server = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env, cwd=REPO, stderr=log)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        wait_up(base)
        if args.setup == "processes":
            workers = [
                subprocess.Popen([*cli, "worker"], env=env, cwd=REPO, stderr=subprocess.DEVNULL)
                for _ in range(args.workers)
            ]
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["external_id", "id_number", "name", "benefit_types"])
        for i, (_, f) in enumerate(cards):
            w.writerow([f"B{i:05d}", f.id_number, f.name, "enterprise_pension"])
        httpx.post(
            base + "/api/v1/roster",
            headers={"X-API-Key": API_KEY},
            files={"file": ("r.csv", buf.getvalue().encode(), "text/csv")},
            timeout=60,
        ).raise_for_status()
        # One warm-up certification (model loading is not throughput).
        warm = certify_one(base, "B00000", cards[0][0], video + b"\0warm")
        t0 = time.time()
        with cf.ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(certify_one, base, f"B{i:05d}", cards[i][0], video + f"\0copy-{i}".encode())
                for i in range(1, args.n)
            ]
            results = [f.result() for f in futures]
        wall = time.time() - t0
        rss = {"api+worker" if args.setup == "thread" else "api": peak_rss_mb(server.pid)}
        for k, pid in enumerate([p.pid for p in workers] + children(server.pid)):
            rss[f"worker{k}"] = peak_rss_mb(pid)
    finally:
        for p in [*workers, server]:
            p.terminate()
        for p in [*workers, server]:
            p.wait(30)
    lat = np.asarray([r["decided"] - r["acked"] for r in results])
    decisions: dict[str, int] = {}
    for r in [warm, *results]:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
    return {
        "setup": args.setup,
        "workers": 1 if args.setup == "thread" else args.workers,
        "ort_threads_per_worker": threads,
        "certifications": len(results),
        "clients": args.clients,
        "wall_s": round(wall, 2),
        "certifications_per_minute": round(len(results) / wall * 60, 1),
        "latency_upload_to_decision_s": {
            "p50": round(float(np.percentile(lat, 50)), 2),
            "p95": round(float(np.percentile(lat, 95)), 2),
            "max": round(float(lat.max()), 2),
        },
        "peak_rss_mb": rss,
        "decisions": decisions,
        "video": DEMO_VIDEO,
        "challenge": DEMO_ACTIONS,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=24, help="certifications (the first one warms up)")
    p.add_argument("--setup", choices=("embedded", "thread", "processes"), default="embedded")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    p.add_argument("--ort-threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "bench/results/service.json")
    args = p.parse_args()
    result = run(args)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    out[args.setup] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
