"""Pipeline benchmark: per-stage and end-to-end latency of one certification (ID card + 5-second 720p selfie video
→ decision), side by side with a straightforward baseline (bench/baseline.py), pinned to 2 cores.

    .venv/bin/python bench/pipeline.py --n 20 --out bench/results/pipeline.json
    .venv/bin/python bench/pipeline.py --n 3 --baseline-n 2 --out bench/results/pipeline.dev.json   # quick check
    .venv/bin/python bench/pipeline.py --n 0 --profile 5 --out bench/results/pipeline.profile.dev.json

Inputs: N ID-card photos rendered by the project's generator (`service.adapters.cli.demo.sample_card`, seeds 1000…)
around
the face of the real webcam video `spoof/videos/apfol_real2.webm`, and that video's first 5 s re-encoded to
1280×720 H.264 at 30 fps (the shared data has no 5 s 720p selfie with head movements; see bench/common.py).

"ours" runs the stage classes in the order `pipelines.decision.runner.Certifier.run` does (ID card → liveness →
card portrait match → decision), each timed; inside liveness, the time spent in each model (summed over its
threads: they overlap) and the decode thread's CPU. `certifier_run_ms` times `Certifier.run` itself on the same
inputs (what a worker calls). The baseline runs the same models the plain way. CPU ms per certification
(process time, all threads) bounds the throughput: 2 cores / CPU per certification.

--profile K runs cProfile over K `Certifier.run` calls with the liveness threads off (so all work shows in one
thread) and writes the top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20, help="certifications timed (after one warm-up)")
    p.add_argument("--baseline-n", type=int, default=None, help="of which also through the baseline (default: all)")
    p.add_argument("--cores", type=int, default=2, help="CPUs this process is pinned to (0: all allowed)")
    p.add_argument("--ort-threads", type=int, default=2, help="ONNX Runtime intra-op threads per session")
    p.add_argument(
        "--providers",
        default="CPUExecutionProvider",
        help="CPUExecutionProvider, or CUDAExecutionProvider (needs onnxruntime-gpu and a GPU; RapidOCR stays on CPU)",
    )
    p.add_argument("--profile", type=int, default=0, help="also profile this many Certifier.run calls (cProfile)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/pipeline.json")
    return p.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    # Before any model import: the session factory reads these.
    os.environ["PENSION_CERT_ORT_THREADS"] = str(ARGS.ort_threads)
    if "CUDAExecutionProvider" not in ARGS.providers:
        os.environ["PENSION_CERT_DEVICE"] = "cpu"

from bench.baseline import BaselinePipeline  # noqa: E402
from bench.common import (  # noqa: E402
    CLIP_ACTIONS,
    machine,
    make_clip,
    pin_cores,
    render_cards,
    summary,
)
from pipelines.decision.rules import Evidence, decide  # noqa: E402
from pipelines.decision.runner import Certifier  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.liveness import LivenessChecker, LivenessConfig  # noqa: E402
from pipelines.media import decode_image  # noqa: E402


class BusyTimes:
    """Wraps model methods on their instances to sum the wall time spent inside them (from any thread)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def wrap(self, obj: object, method: str, name: str) -> None:
        fn: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.ms[name] += (time.perf_counter() - t0) * 1000

        setattr(obj, method, timed)

    def take(self) -> dict[str, float]:
        with self._lock:
            out = dict(self.ms)
            self.ms.clear()
        return out


def run_staged(cert: Certifier, busy: BusyTimes, card: bytes, video: bytes, expected: str) -> dict[str, Any]:
    """Certifier.run's steps, in its order, each timed (first certification: no enrolled template)."""
    stages: dict[str, float] = {}
    cpu0, t_all = time.process_time(), time.perf_counter()

    t = time.perf_counter()
    id_card = cert.reader.read(decode_image(card))
    stages["id_card"] = (time.perf_counter() - t) * 1000
    busy.take()

    t = time.perf_counter()
    live = cert.liveness.check(video, CLIP_ACTIONS)
    stages["liveness"] = (time.perf_counter() - t) * 1000
    inside = busy.take()

    t = time.perf_counter()
    probes = [f.observation for f in live.best_frames if f.observation is not None]
    match = None
    if id_card.portrait is not None and probes:
        try:
            reference = cert.matcher.observe(id_card.portrait, allow_multiple=True)
            match = cert.matcher.compare(reference, probes)
        except PipelineError:
            match = None
    stages["face_match"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    versions = {
        **cert.pack.versions(("detector", "recognizer")),
        **{f"liveness:{k}": v for k, v in live.models.items()},
    }
    ev = Evidence(id_card, live, match, None, expected, [], versions)
    decision = decide(ev, cert.config)
    stages["decision"] = (time.perf_counter() - t) * 1000
    stages["total"] = (time.perf_counter() - t_all) * 1000
    tm = live.timings_ms
    breakdown = {
        "decode_thread_cpu": tm.get("decode_thread_cpu", 0.0),
        "mesh_loop_main_thread_cpu": tm.get("track_main_cpu", 0.0),
        "key_frames_wait": tm.get("key_frames_wait", 0.0),
        **{f"{k}_busy": v for k, v in inside.items()},
    }
    return {
        "stages_ms": stages,
        "liveness_ms": breakdown,
        "cpu_ms": (time.process_time() - cpu0) * 1000,
        "decision": decision.outcome.value,
        "reasons": [r.value for r in decision.reasons],
        "frames_analyzed": live.frames_analyzed,
        "card_similarity": None if match is None else match.similarity,
        "id_card_timings_ms": id_card.timings_ms,
    }


def instrument(cert: Certifier) -> BusyTimes:
    busy = BusyTimes()
    live = cert.liveness
    busy.wrap(live.passive, "score", "passive_antispoof")
    busy.wrap(live.landmarks, "predict", "landmarks")
    busy.wrap(cert.matcher, "detect", "detect")
    busy.wrap(cert.matcher, "observe_many", "align_embed")
    return busy


def stage_summaries(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    names = list(dict.fromkeys(k for r in rows for k in r[key]))
    return {k: summary([r[key][k] for r in rows if k in r[key]], 2) for k in names}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def speedups(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """baseline / ours, at p50 and p95, per comparable stage (the decision rule is the same function in both)."""
    o, b = ours["stages_ms"], base["stages_ms"]
    ol = ours["liveness_ms"]
    video_steps = ("decode", "detect", "passive", "landmarks", "embed", "challenge")

    def b_sum(keys: tuple[str, ...], q: str) -> float | None:
        vals = [b[k][q] for k in keys if k in b and b[k][q] is not None]
        return sum(vals) if vals else None

    out: dict[str, Any] = {}
    for q in ("p50", "p95"):
        out[q] = {
            "id_card": ratio(b["id_card"][q], o["id_card"][q]),
            "video_liveness": ratio(b_sum(video_steps, q), o["liveness"][q]),
            "face_match": ratio(b_sum(("card_portrait", "face_match"), q), o["face_match"][q]),
            "end_to_end": ratio(b["total"][q], o["total"][q]),
            # Inside the video stage: baseline step vs the time ours spends in the same model (all threads).
            "video_decode": ratio(b["decode"][q], ol["decode_thread_cpu"][q]),
            "passive_antispoof": ratio(b.get("passive", {}).get(q), ol.get("passive_antispoof_busy", {}).get(q)),
            "landmarks": ratio(b.get("landmarks", {}).get(q), ol.get("landmarks_busy", {}).get(q)),
        }
    out["cpu_per_certification"] = ratio(base["cpu_ms"]["p50"], ours["cpu_ms"]["p50"])
    return out


def profile(cert: Certifier, cards: Any, video: bytes, k: int) -> dict[str, Any]:
    # The same models, liveness without its side threads: every CPU cost shows up in this one thread.
    seq = LivenessChecker(cert.pack, LivenessConfig(check_duplicates=False, decode_thread=False), matcher=cert.matcher)
    cert.__dict__["liveness"] = seq  # replaces the cached_property value on this instance only
    cert.run(cards.card(0), video, CLIP_ACTIONS)  # warm
    # CPU time (all threads of the process), not wall time: other load on the machine does not inflate it.
    prof = cProfile.Profile(time.process_time)
    cpu0 = time.process_time()
    for i in range(k):
        card = cards.card(i % len(cards.fields))
        prof.enable()
        cert.run(card, video, CLIP_ACTIONS, cards.fields[i % len(cards.fields)]["id_number"])
        prof.disable()
    cpu = (time.process_time() - cpu0) * 1000 / k
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in raw.items():
        where = file.replace(str(REPO) + "/", "").split("site-packages/")[-1]
        if where.startswith("bench/"):
            continue  # the timing wrappers of this script
        rows.append(
            {
                "function": f"{where}:{line}({func})",
                "calls_per_cert": round(nc / k, 1),
                "own_ms_per_cert": round(tt * 1000 / k, 1),
                "cum_ms_per_cert": round(ct * 1000 / k, 1),
            }
        )
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
    return {
        "certifications": k,
        "cpu_ms_per_cert": round(cpu, 1),
        "liveness_threads": "off (sequential) for profiling",
        "timer": "process CPU time (ONNX Runtime's own threads included)",
        "top_own_time": sorted(rows, key=lambda r: -r["own_ms_per_cert"])[:30],
        "top_cumulative": sorted(rows, key=lambda r: -r["cum_ms_per_cert"])[:40],
        "pstats_text": text.getvalue().splitlines()[:60],
    }


def main(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in args.providers and "CUDAExecutionProvider" not in ort.get_available_providers():
        sys.stderr.write("CUDAExecutionProvider requested but not available (install onnxruntime-gpu, need a GPU)\n")
        return 2
    cores = pin_cores(args.cores)
    machine_before = machine()
    tmp = Path(tempfile.mkdtemp(prefix="pension-bench-pipeline-"))
    clip = make_clip(tmp / "clip.mp4")
    video = (tmp / "clip.mp4").read_bytes()
    total = max(args.n, args.profile, 1) + 1
    cards = render_cards(total, tmp / "cards", processes=min(2, len(cores)))
    cert = Certifier()
    cert.warm_up()
    baseline = BaselinePipeline(cert)
    busy = instrument(cert)
    # Warm-up (first-call allocations, OCR and RapidOCR sessions) is not part of any figure.
    cert.run(cards.card(0), video, CLIP_ACTIONS)
    baseline.warm_up(cards.card(0))
    busy.take()
    n_base = args.n if args.baseline_n is None else min(args.baseline_n, args.n)
    ours_rows: list[dict[str, Any]] = []
    cert_rows: list[dict[str, Any]] = []
    base_rows: list[dict[str, Any]] = []
    for i in range(1, args.n + 1):
        card, expected = cards.card(i), cards.fields[i]["id_number"]
        ours_rows.append(run_staged(cert, busy, card, video, expected))
        c0, t0 = time.process_time(), time.perf_counter()
        report = cert.run(card, video, CLIP_ACTIONS, expected)
        wall_ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        # The Certifier's own stage timings (seconds), when it reports them.
        own = {k: v * 1000 for k, v in (getattr(report, "timings", None) or {}).items()}
        cert_rows.append({"ms": wall_ms, "cpu_ms": cpu_ms, "decision": report.decision.outcome.value, "stages_ms": own})
        busy.take()
        if i <= n_base:
            c0 = time.process_time()
            b = baseline.run(card, video, CLIP_ACTIONS, expected)
            base_rows.append({"stages_ms": b.stages_ms, "cpu_ms": (time.process_time() - c0) * 1000,
                              "decision": b.decision, "reasons": b.reasons, "frames": b.frames,
                              "card_similarity": b.card_similarity})  # fmt: skip
        sys.stderr.write(f"\r{i}/{args.n}")
    sys.stderr.write("\n")
    providers = cert.matcher.detector.session.get_providers()
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {
            "certifications": args.n,
            "baseline_certifications": len(base_rows),
            "pinned_cpus": cores,
            "ort_threads": args.ort_threads,
            "providers": providers,
            "video": clip,
            "cards": "service.adapters.cli.demo.sample_card (project generator, portrait from the clip's face), "
            "seeds 1000+",
            "challenge": CLIP_ACTIONS,
        },
        "machine": machine_before,
    }
    if ours_rows:
        ours: dict[str, Any] = {
            "stages_ms": stage_summaries(ours_rows, "stages_ms"),
            "liveness_ms": stage_summaries(ours_rows, "liveness_ms"),
            "cpu_ms": summary([r["cpu_ms"] for r in ours_rows]),
            "certifier_run_ms": summary([r["ms"] for r in cert_rows]),
            "certifier_run_cpu_ms": summary([r["cpu_ms"] for r in cert_rows]),
            "certifier_run_stages_ms": stage_summaries(cert_rows, "stages_ms"),
            "decisions": dict(Counter(r["decision"] for r in ours_rows)),
            "reasons": dict(Counter(x for r in ours_rows for x in r["reasons"])),
            "frames_analyzed": summary([r["frames_analyzed"] for r in ours_rows], 0),
            "id_card_internal_ms": stage_summaries(ours_rows, "id_card_timings_ms"),
        }
        cpu_p50 = ours["certifier_run_cpu_ms"]["p50"]
        ours["cpu_bound_certifications_per_minute_2_cores"] = round(2 * 60_000 / cpu_p50, 1) if cpu_p50 else None
        result["ours"] = ours
    if base_rows:
        base: dict[str, Any] = {
            "stages_ms": stage_summaries(base_rows, "stages_ms"),
            "cpu_ms": summary([r["cpu_ms"] for r in base_rows]),
            "decisions": dict(Counter(r["decision"] for r in base_rows)),
            "reasons": dict(Counter(x for r in base_rows for x in r["reasons"])),
            "frames_analyzed": summary([r["frames"] for r in base_rows], 0),
        }
        cpu_p50 = base["cpu_ms"]["p50"]
        base["cpu_bound_certifications_per_minute_2_cores"] = round(2 * 60_000 / cpu_p50, 1) if cpu_p50 else None
        result["baseline"] = base
        if ours_rows:
            result["speedup_baseline_over_ours"] = speedups(result["ours"], base)
            same = sum(o["decision"] == b["decision"] for o, b in zip(ours_rows, base_rows, strict=False))
            result["decision_agreement"] = f"{same}/{len(base_rows)}"
    if args.profile:
        result["profile"] = profile(cert, cards, video, args.profile)
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    brief: dict[str, Any] = {k: result[k] for k in ("speedup_baseline_over_ours", "decision_agreement") if k in result}
    if "ours" in result:
        brief["ours_total_ms"] = result["ours"]["stages_ms"]["total"]
        brief["certifier_run_ms"] = result["ours"]["certifier_run_ms"]
    if "baseline" in result:
        brief["baseline_total_ms"] = result["baseline"]["stages_ms"]["total"]
    sys.stdout.write(json.dumps(brief, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__" and ARGS is not None:
    sys.exit(main(ARGS))
