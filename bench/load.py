"""Open-loop load test (k6-style constant arrival rate) of the whole citizen flow, headless, on loopback.

    python bench/load.py                     # 60 certifications/min for 600 s against a fresh embedded server
                                             # (2 worker processes) → bench/results/load.json
    python bench/load.py --rate 20 --duration 60 --out bench/results/load.dev.json       # short check
    python bench/load.py --setup celery --workers 2   # the scale-out set-up (PostgreSQL + Redis + Celery)
    python bench/load.py --base-url http://127.0.0.1:8000 --api-key KEY                  # a running server

A new virtual user starts every 60/rate seconds whatever the server's state (open loop: a slow server builds a
queue instead of slowing the arrivals). Each one does the citizen flow: the channel back-end opens a session
with the API key, then the "phone" (its own client IP, sent as X-Forwarded-For through the trusted loopback
proxy, like behind nginx) uploads its own rendered ID card and its own copy of the 5-second 720p video with
the challenge nonce, and polls the session until it is decided. Every request's status is recorded.

Media (one card and one beneficiary per certification, roster imported) are prepared before the clock starts.
Arrivals stop after --duration; the acknowledged certifications then have --drain seconds to be decided; the
run stops hard at duration + drain. "Lost" = an acknowledged video upload without a decision at the end.
Exit status 1 when any request got a 5xx or a transport error, any certification was lost, or any job ended
"failed"; else 0. Per-minute windows (by arrival time) show saturation: arrivals, decisions, latency from the
acknowledged upload to the decision (p50/p95/max), 5xx, the server's memory and the load average.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    CLIP_ACTIONS,
    SETUPS,
    Cards,
    Server,
    cpu_delta,
    machine,
    make_clip,
    render_cards,
    start_service,
    summary,
    unique_video,
)

TERMINAL = ("decided", "failed")
# Certifications run before the clock starts (the last cards): first-call costs in the workers are not load.
WARM_UP = 4


@dataclass
class Cert:
    """One virtual user's certification: what it sent, what it got, when."""

    i: int
    scheduled: float
    started: float = 0.0
    session_id: str | None = None
    acked: float | None = None  # video upload acknowledged (2xx)
    state: str | None = None
    decision: str | None = None
    decided_server: float | None = None  # the server's decided_at
    decided_seen: float | None = None  # when a poll first saw the decision
    failed_step: str | None = None
    requests: list[tuple[str, int, float]] = field(default_factory=list)  # (step, status or 0, seconds)


@dataclass
class Plan:
    base: str
    api_key: str
    cards: Cards
    video: bytes
    prefix: str
    poll_s: float
    hard_stop: float  # monotonic deadline
    forwarded_for: bool
    timeout_s: float


def _client_ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _send(c: httpx.Client, cert: Cert, step: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
    t0 = time.monotonic()
    try:
        r = c.request(method, url, **kw)
    except httpx.HTTPError as exc:
        cert.requests.append((f"{step}:{type(exc).__name__}", 0, time.monotonic() - t0))
        return None
    cert.requests.append((step, r.status_code, time.monotonic() - t0))
    return r


def virtual_user(c: httpx.Client, plan: Plan, cert: Cert) -> Cert:
    cert.started = time.time()
    ip = {"X-Forwarded-For": _client_ip(cert.i + 1)} if plan.forwarded_for else {}
    r = _send(
        c, cert, "session", "POST", "/api/v1/sessions",
        json={"external_id": f"{plan.prefix}{cert.i:05d}"}, headers={"X-API-Key": plan.api_key, **ip},
    )  # fmt: skip
    if r is None or r.status_code >= 300:
        cert.failed_step = "session"
        return cert
    s = r.json()
    sid = cert.session_id = s["session_id"]
    auth = {"Authorization": f"Bearer {s['token']}", **ip}
    r = _send(
        c, cert, "id_card", "POST", f"/api/v1/sessions/{sid}/id-card",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": ("card.jpg", plan.cards.card(cert.i), "image/jpeg")},
    )  # fmt: skip
    if r is None or r.status_code >= 300:
        cert.failed_step = "id_card"
        return cert
    r = _send(
        c, cert, "video", "POST", f"/api/v1/sessions/{sid}/video",
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        files={"file": ("selfie.mp4", unique_video(plan.video, cert.i), "video/mp4")},
        data={"nonce": s["challenge"]["nonce"]},
    )  # fmt: skip
    if r is None or r.status_code >= 300:
        cert.failed_step = "video"
        return cert
    cert.acked = time.time()
    while time.monotonic() < plan.hard_stop:
        time.sleep(plan.poll_s)
        r = _send(c, cert, "poll", "GET", f"/api/v1/sessions/{sid}", headers=auth)
        if r is None or r.status_code != 200:
            continue
        body = r.json()
        cert.state = body.get("state")
        if cert.state in TERMINAL:
            cert.decided_seen = time.time()
            cert.decision = body.get("decision")
            at = body.get("decided_at")
            if at:
                cert.decided_server = dt.datetime.fromisoformat(at.rstrip("Z")).replace(tzinfo=dt.UTC).timestamp()
            break
    return cert


class RssSampler:
    """The server processes' resident memory every few seconds (only for a server this script started)."""

    def __init__(self, server: Server | None, every_s: float = 5.0) -> None:
        self.server = server
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (time, total MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while self.server is not None and not self._stop.wait(self.every_s):
            total = sum(v or 0.0 for v in self.server.rss("VmRSS").values())
            self.samples.append((time.time(), total))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run_load(plan: Plan, rate: float, duration: float, max_vus: int) -> tuple[list[Cert], float]:
    n = int(rate * duration / 60)
    period = 60.0 / rate
    certs = [Cert(i, 0.0) for i in range(n)]
    limits = httpx.Limits(max_connections=max_vus, max_keepalive_connections=max_vus)
    with (
        httpx.Client(base_url=plan.base, timeout=plan.timeout_s, limits=limits) as c,
        cf.ThreadPoolExecutor(max_vus, thread_name_prefix="vu") as pool,
    ):
        t0 = time.time()
        m0 = time.monotonic()
        futures = []
        for cert in certs:
            # Constant arrival rate: the i-th user starts at t0 + i·period, however the earlier ones fare.
            delay = m0 + cert.i * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cert.scheduled = t0 + cert.i * period
            futures.append(pool.submit(virtual_user, c, plan, cert))
        # Drain: virtual users stop polling by themselves at the hard stop.
        cf.wait(futures, timeout=max(0.0, plan.hard_stop - time.monotonic()) + plan.timeout_s + 5)
    return certs, t0


Series = list[tuple[float, float]]


def metrics_lines(base: str, timeout: float) -> list[str]:
    """The service's Prometheus exposition, line by line (empty when it does not answer)."""
    try:
        r = httpx.get(base + "/metrics", timeout=timeout)
    except httpx.HTTPError:
        return []
    return r.text.splitlines() if r.status_code == 200 else []


def queue_pending(base: str) -> float | None:
    """Jobs waiting for a worker, from the service's Prometheus endpoint (None when it does not answer)."""
    for line in metrics_lines(base, 2):
        if line.startswith('pension_cert_queue_jobs{state="pending"}'):
            return float(line.split()[-1])
    return None


def stage_totals(base: str) -> dict[str, tuple[float, float]]:
    """Worker stage histograms from /metrics: stage → (sum of seconds, count), summed over processes."""
    out: dict[str, tuple[float, float]] = {}
    for line in metrics_lines(base, 5):
        for suffix, k in (("_sum", 0), ("_count", 1)):
            head = f"pension_cert_stage_duration_seconds{suffix}{{"
            if line.startswith(head) and 'stage="' in line:
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                acc = list(out.get(stage, (0.0, 0.0)))
                acc[k] += float(line.split()[-1])
                out[stage] = (acc[0], acc[1])
    return out


def stage_means(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Mean worker seconds per stage between two scrapes (empty when the workers report no stage timings)."""
    out: dict[str, Any] = {}
    for stage, (total, count) in after.items():
        t0, c0 = before.get(stage, (0.0, 0.0))
        if count > c0:
            out[stage] = {"n": int(count - c0), "mean_s": round((total - t0) / (count - c0), 3)}
    return out


def windows(certs: list[Cert], t0: float, rss: Series, load: Series, queue: Series) -> list[Any]:
    per: dict[int, list[Cert]] = defaultdict(list)
    for c in certs:
        per[int((c.scheduled - t0) // 60)].append(c)
    out = []
    for m in sorted(per):
        cs = per[m]
        lat = [c.decided_server - c.acked for c in cs if c.acked and c.decided_server]
        codes = Counter(code for c in cs for _, code, _ in c.requests)
        in_min = [v for t, v in rss if m * 60 <= t - t0 < (m + 1) * 60]
        la = [v for t, v in load if m * 60 <= t - t0 < (m + 1) * 60]
        qd = [v for t, v in queue if m * 60 <= t - t0 < (m + 1) * 60]
        out.append({
            "minute": m,
            "arrivals": len(cs),
            "acknowledged": sum(1 for c in cs if c.acked),
            "decided": sum(1 for c in cs if c.state == "decided"),
            "lost": sum(1 for c in cs if c.acked and c.state not in TERMINAL),
            "latency_upload_to_decision_s": summary(lat, 2),
            "http_5xx": sum(v for k, v in codes.items() if k >= 500),
            "transport_errors": codes.get(0, 0),
            "start_lag_s_max": round(max((c.started - c.scheduled for c in cs if c.started), default=0.0), 3),
            "server_rss_mb_total_max": round(max(in_min), 1) if in_min else None,
            "loadavg_1m_max": round(max(la), 2) if la else None,
            "queue_pending_max": max(qd) if qd else None,
        })  # fmt: skip
    return out


def report(certs: list[Cert], t0: float, end: float, args: argparse.Namespace) -> dict[str, Any]:
    statuses: dict[str, Counter[int]] = defaultdict(Counter)
    transport: Counter[str] = Counter()
    for c in certs:
        for step, code, _ in c.requests:
            statuses[step.split(":")[0]][code] += 1
            if code == 0:
                transport[step] += 1
    all_codes = Counter(code for cs in statuses.values() for code in cs.elements())
    acked = [c for c in certs if c.acked]
    decided = [c for c in acked if c.state == "decided"]
    lost = [c for c in acked if c.state not in TERMINAL]
    failed_jobs = [c for c in acked if c.state == "failed"]
    lat = [c.decided_server - c.acked for c in decided if c.decided_server and c.acked]
    seen = [c.decided_seen - c.acked for c in decided if c.decided_seen and c.acked]
    last_arrival = max((c.scheduled for c in certs), default=t0)
    req_ms = {
        step: summary([d * 1000 for c in certs for s, code, d in c.requests if s == step and code], 1)
        for step in ("session", "id_card", "video", "poll")
    }
    return {
        "target": {"rate_per_min": args.rate, "duration_s": args.duration, "drain_s": args.drain},
        "arrivals": len(certs),
        "achieved_arrival_rate_per_min": round((len(certs) - 1) / (last_arrival - t0) * 60, 2)
        if len(certs) > 1
        else None,
        "acknowledged": len(acked),
        "not_acknowledged": {k: v for k, v in Counter(c.failed_step for c in certs if not c.acked).items()},
        "decided": len(decided),
        "decisions": dict(Counter(c.decision for c in decided)),
        "lost": len(lost),
        "lost_session_ids": [c.session_id for c in lost][:50],
        "failed_jobs": len(failed_jobs),
        "decisions_per_min_during_arrivals": round(
            sum(1 for c in decided if c.decided_server and c.decided_server <= last_arrival)
            / max(last_arrival - t0, 1)
            * 60,
            2,
        ),
        "latency_upload_to_decision_s": summary(lat, 2),
        "latency_upload_to_client_seeing_decision_s": summary(seen, 2),
        "request_ms": req_ms,
        "http_status_counts": {str(k): v for k, v in sorted(all_codes.items())},
        "http_status_by_step": {s: {str(k): v for k, v in sorted(cs.items())} for s, cs in statuses.items()},
        "http_5xx": sum(v for k, v in all_codes.items() if k >= 500),
        "transport_errors": dict(transport),
        "max_start_lag_s": round(max((c.started - c.scheduled for c in certs if c.started), default=0.0), 3),
        "wall_s": round(end - t0, 1),
    }


def prepare(args: argparse.Namespace, tmp: Path) -> tuple[Cards, bytes, dict[str, Any]]:
    n = int(args.rate * args.duration / 60) + WARM_UP
    t = time.monotonic()
    clip = make_clip(tmp / "clip.mp4")
    cards = render_cards(n, tmp / "cards", seed0=args.seed)
    clip["prepare_s"] = round(time.monotonic() - t, 1)
    return cards, (tmp / "clip.mp4").read_bytes(), clip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=60.0, help="certifications started per minute")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of arrivals")
    p.add_argument("--drain", type=float, default=120.0, help="seconds after the last arrival to finish")
    p.add_argument("--setup", choices=SETUPS, default="embedded", help="server to start (ignored with --base-url)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--ort-threads", type=int, default=None)
    p.add_argument("--base-url", default=None, help="an already running server (its roster gets the bench rows)")
    p.add_argument("--api-key", default=None, help="with --base-url: an operator (admin) key (roster import)")
    p.add_argument("--no-forwarded-for", action="store_true", help="do not send a per-user X-Forwarded-For")
    # As the H5 page does (service/features/wechat/h5/static/h5.js): polls are requests the API must serve, and the
    # latency
    # figures come from the server's decided_at, not from when a poll sees the decision.
    p.add_argument("--poll", type=float, default=1.5, help="seconds between status polls")
    p.add_argument("--max-vus", type=int, default=200, help="concurrent virtual users at most")
    p.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    p.add_argument("--seed", type=int, default=20000, help="first card seed (one beneficiary each)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/load.json")
    args = p.parse_args()
    if args.base_url and not args.api_key:
        p.error("--base-url needs --api-key")
    tmp = Path(tempfile.mkdtemp(prefix="pension-bench-load-"))
    cards, video, clip = prepare(args, tmp)
    prefix = f"L{uuid.uuid4().hex[:6]}-"
    # A server this script starts sits "behind" a trusted loopback proxy: each virtual user has its own IP.
    extra = {"PENSION_CERT_TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"])}
    server_info: dict[str, Any]
    try:
        if args.base_url:
            result = _run(args, None, args.base_url, args.api_key, cards, video, prefix)
            server_info = {"base_url": args.base_url}
        else:
            with start_service(args.setup, args.workers, args.ort_threads, extra) as srv:
                result = _run(args, srv, srv.base, srv.api_key, cards, video, prefix)
                server_info = {
                    "setup": srv.setup,
                    "workers": srv.workers,
                    "ort_threads_per_worker": srv.ort_threads,
                    **srv.notes,
                    "peak_rss_mb": srv.rss(),
                }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["server"] = server_info
    result["video"] = clip
    result["challenge"] = CLIP_ACTIONS
    result["machine"] = machine()
    result["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ok = (
        result["http_5xx"] == 0
        and result["lost"] == 0
        and result["failed_jobs"] == 0
        and not result["transport_errors"]
    )
    result["passed"] = ok
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    brief = {k: result[k] for k in ("passed", "arrivals", "acknowledged", "decided", "lost", "http_5xx",
                                    "latency_upload_to_decision_s", "achieved_arrival_rate_per_min")}  # fmt: skip
    sys.stdout.write(json.dumps(brief, ensure_ascii=False) + "\n")
    return 0 if ok else 1


def _run(
    args: argparse.Namespace, srv: Server | None, base: str, api_key: str, cards: Cards, video: bytes, prefix: str
) -> dict[str, Any]:
    httpx.post(
        base + "/api/v1/roster",
        headers={"X-API-Key": api_key},
        files={"file": ("load.csv", cards.roster_csv(prefix), "text/csv")},
        timeout=300,
    ).raise_for_status()
    n = int(args.rate * args.duration / 60)
    warm_plan = Plan(base, api_key, cards, video, prefix, args.poll, time.monotonic() + 300, False, args.timeout)
    with httpx.Client(base_url=base, timeout=args.timeout) as c, cf.ThreadPoolExecutor(WARM_UP) as pool:
        warm = list(pool.map(lambda i: virtual_user(c, warm_plan, Cert(i, time.time())), range(n, n + WARM_UP)))
    hard_stop = time.monotonic() + args.duration + args.drain
    plan = Plan(base, api_key, cards, video, prefix, args.poll, hard_stop, not args.no_forwarded_for, args.timeout)
    load: Series = []
    queue: Series = []
    stop = threading.Event()

    def sample_load() -> None:
        while not stop.wait(5.0):
            load.append((time.time(), os.getloadavg()[0]))
            depth = queue_pending(base)
            if depth is not None:
                queue.append((time.time(), depth))

    sampler = threading.Thread(target=sample_load, daemon=True)
    sampler.start()
    cpu0 = srv.cpu() if srv is not None else {}
    stages0 = stage_totals(base)
    with RssSampler(srv) as rss:
        certs, t0 = run_load(plan, args.rate, args.duration, args.max_vus)
    cpu1 = srv.cpu() if srv is not None else {}
    stop.set()
    sampler.join()
    result = report(certs, t0, time.time(), args)
    result["per_minute"] = windows(certs, t0, rss.samples, load, queue)
    result["worker_stage_seconds"] = stage_means(stages0, stage_totals(base))
    if srv is not None:
        # Everything the server spent (API: requests, uploads, encryption, polls; workers: the pipelines).
        result["server_cpu_s_per_certification"] = cpu_delta(cpu0, cpu1, result["decided"])
    result["queue_pending_max"] = max((v for _, v in queue), default=None)
    result["warm_up"] = {
        "certifications": len(warm),
        "states": dict(Counter(w.state for w in warm)),
        "latency_upload_to_decision_s": summary(
            [w.decided_server - w.acked for w in warm if w.decided_server and w.acked], 2
        ),
    }
    return result


if __name__ == "__main__":
    sys.exit(main())
