"""End-to-end service benchmark: certifications per minute through the HTTP API on this machine, latency
from the acknowledged video upload to the decision (p50/p95), and worker memory (peak RSS).

    python bench/service.py --n 40 --setup embedded --out bench/results/service.json
    python bench/service.py --n 40 --setup celery --workers 1 --out bench/results/service.json
    python bench/service.py --n 40 --setup celery --workers 2 --out bench/results/service.json
    python bench/service.py --n 6 --setup celery --workers 2 --out bench/results/service.dev.json   # quick check
    python bench/service.py --n 40 --setup celery-s3 --workers 2 --out bench/results/service.json

`embedded`: `pension-cert serve` on its defaults (SQLite, local encrypted storage, --workers worker processes
that it starts itself, polling the same database). `thread`: the same with one worker thread inside the API
process. `processes`: the API with its worker off plus --workers `pension-cert worker` processes. `celery`:
the scale-out set-up on loopback: throwaway PostgreSQL (Alembic-migrated) and Redis started from the Debian
binaries, the API enqueuing to Redis, and --workers `celery -A service.adapters.workers.tasks worker --pool=solo
--concurrency=1` processes. `celery-s3`: the same with the media in a bucket (an S3 server on loopback) and
every process in its own working directory, no shared media folder (API and workers on separate hosts,
simulated). ONNX Runtime threads per worker: 2 for one worker, 1 each for two (2 cores).

Each certification uses its own rendered ID card (its own beneficiary) and its own copy of the video (re-muxed
bytes: the service refuses an exact duplicate), so every one runs the full pipeline. --clip 720p (default) is
the 5-second 1280×720 H.264 clip of bench/common.py; --clip demo the 11.7 s 640×480 WebM of the demo.
Closed loop: --clients concurrent HTTP clients each run whole certifications back to back. Results merge
into --out under "<setup>" (or "celery_<workers>w").
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    CLIP_ACTIONS,
    SETUPS,
    cpu_delta,
    data_dir,
    machine,
    make_clip,
    render_cards,
    start_service,
    summary,
    unique_video,
)
from service.adapters.cli.demo import DEMO_VIDEO, upload_media  # noqa: E402


def certify_one(base: str, api_key: str, ext: str, card: bytes, video: bytes) -> dict[str, Any]:
    # The 720p clip is MP4, the demo video WebM: upload each under its own type, as a phone would.
    name, ctype = ("selfie.mp4", "video/mp4") if video[4:8] == b"ftyp" else ("selfie.webm", "video/webm")
    with httpx.Client(base_url=base, headers={"X-API-Key": api_key}, timeout=120) as c:
        r = c.post("/api/v1/sessions", json={"external_id": ext})
        r.raise_for_status()
        s = r.json()
        sid = s["session_id"]
        auth = upload_media(c, s, card, video, name, ctype)
        acked = time.time()
        while True:
            res = c.get(f"/api/v1/sessions/{sid}", headers=auth).json()
            if res["state"] in ("decided", "failed"):
                break
            time.sleep(0.1)
        done = time.time()
        decided_at = res.get("decided_at")
        decided = (
            dt.datetime.fromisoformat(decided_at.rstrip("Z")).replace(tzinfo=dt.UTC).timestamp() if decided_at else done
        )
        return {"acked": acked, "decided": decided, "done": done, "decision": res["decision"] or res["state"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The clip and the rendered cards are scratch (tens of MB a run): removed however the run ends; what the bench
    # keeps is the result (main writes it to --out).
    with tempfile.TemporaryDirectory(prefix="pension-bench-service-") as scratch:
        return _measure(args, Path(scratch))


def _measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if args.clip == "720p":
        clip_info = make_clip(tmp / "clip.mp4")
        video = (tmp / "clip.mp4").read_bytes()
    else:
        video = (data_dir() / DEMO_VIDEO).read_bytes()
        clip_info = {"source": DEMO_VIDEO, "transform": "none (640x480 WebM, 11.7 s)", "bytes": len(video)}
    warm_n = 1 if args.setup == "thread" else args.workers
    cards = render_cards(args.n + warm_n, tmp / "cards")
    with start_service(args.setup, args.workers, args.ort_threads) as srv:
        c = httpx.Client(base_url=srv.base, headers={"X-API-Key": srv.api_key}, timeout=120)
        c.post("/api/v1/roster", files={"file": ("r.csv", cards.roster_csv("B"), "text/csv")}).raise_for_status()
        # Warm-up: one certification per worker at once (Celery workers load their models on their first task).
        with cf.ThreadPoolExecutor(warm_n) as pool:
            warm = list(
                pool.map(
                    lambda i: certify_one(srv.base, srv.api_key, f"B{i:05d}", cards.card(i), unique_video(video, i)),
                    range(warm_n),
                )
            )
        cpu0, stored0 = srv.cpu(), srv.stored_bytes()
        t0 = time.time()
        with cf.ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(certify_one, srv.base, srv.api_key, f"B{i:05d}", cards.card(i), unique_video(video, i))
                for i in range(warm_n, warm_n + args.n)
            ]
            results = [f.result() for f in futures]
        wall = time.time() - t0
        rss = srv.rss()
        cpu = cpu_delta(cpu0, srv.cpu(), len(results))
        stored = {k: round((v - stored0.get(k, 0)) / len(results)) for k, v in srv.stored_bytes().items()}
        setup_info = {"workers": srv.workers, "ort_threads_per_worker": srv.ort_threads, **srv.notes}
    lat = [r["decided"] - r["acked"] for r in results]
    seen = [r["done"] - r["acked"] for r in results]
    decisions: dict[str, int] = {}
    for r in [*warm, *results]:
        decisions[r["decision"]] = decisions.get(r["decision"], 0) + 1
    return {
        "setup": args.setup,
        **setup_info,
        "certifications": len(results),
        "warm_up_certifications": warm_n,
        "clients": args.clients,
        "wall_s": round(wall, 2),
        "certifications_per_minute": round(len(results) / wall * 60, 1),
        "latency_upload_to_decision_s": summary(lat, 2),
        "latency_upload_to_client_seeing_decision_s": summary(seen, 2),
        "peak_rss_mb": rss,
        "server_cpu_s_per_certification": cpu,
        # Growth per certification: database bytes (PostgreSQL set-ups; includes its free-space slack) and
        # committed transactions (the API's, the workers' and the sweeps'), media (encrypted card + video, until
        # the retention purge).
        "stored_bytes_per_certification": stored,
        "decisions": decisions,
        "video": clip_info,
        "challenge": CLIP_ACTIONS,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=40, help="certifications timed (after one warm-up per worker)")
    p.add_argument("--setup", choices=SETUPS, default="embedded")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    p.add_argument("--ort-threads", type=int, default=None, help="per worker (default: 2 / workers, at least 1)")
    p.add_argument("--clip", choices=("720p", "demo"), default="720p")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/service.json")
    args = p.parse_args()
    result = run(args)
    result["machine"] = machine()
    result["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    key = f"{args.setup.replace('-', '_')}_{args.workers}w" if args.setup.startswith("celery") else args.setup
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    out[key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
