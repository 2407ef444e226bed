"""Command-line start-up benchmark: what a user or a bureau's script waits for.

    python bench/cli.py --repeat 5 --batch 10 --out bench/results/cli.json

Times, in fresh processes (as a shell runs them): ``pension-cert --help`` (no model runtime may load),
``models list``, ``cycle-run`` on a new embedded database (a command that loads the service's code but runs no
model: what the API, a worker and the operator's database commands pay at start), one cold ``certify`` (every model
loaded for one person), and ``certify --batch`` over N rows of the pipeline bench's material (its 5-second 720p
clip, one rendered card per row whose portrait is the clip's face), models loaded once, reported per
certification: the marginal figure (what each further person adds) compares with bench/results/pipeline.json's
per-certification ``total`` and, measured in the same run (so under the same machine load), with the same rows
through ``Certifier.run`` in one warmed-up process. Same ORT threads (2) as the pipeline bench.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import CLIP_ACTIONS, CLIP_SOURCE, machine, make_clip, render_cards  # noqa: E402


def timed(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "service.adapters.cli", *args], capture_output=True, text=True, env=env, check=False
    )
    return time.perf_counter() - t0, proc


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_s(args: list[str], env: dict[str, str], repeat: int) -> dict[str, Any]:
    """Wall seconds, and the command's CPU seconds (user + system: what it computed, which a loaded machine
    stretches less than the wall time)."""
    times, cpu = [], []
    for _ in range(repeat):
        before = _children_cpu_s()
        seconds, proc = timed(args, env)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-400:]}")
        times.append(seconds)
        cpu.append(_children_cpu_s() - before)
    return {
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "median_cpu_s": round(statistics.median(cpu), 3),
        "n": repeat,
    }


def make_batch(tmp: Path, rows: int) -> tuple[Path, Path, Path]:
    """The pipeline bench's material: its 5-second 720p clip and one rendered card per row (its generator,
    seeds 1000+), as files, with the CSV of ``certify --batch``."""
    make_clip(tmp / "clip.mp4")
    cards = render_cards(rows, tmp / "cards", processes=1)
    batch = tmp / "batch.csv"
    with batch.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id_card", "video", "challenge", "beneficiary_id"])
        for i, f in enumerate(cards.fields):
            w.writerow([f"cards/card_{i:05d}.jpg", "clip.mp4", ",".join(CLIP_ACTIONS), f["id_number"]])
    return batch, tmp / "cards" / "card_00000.jpg", tmp / "clip.mp4"


def run(repeat: int, rows: int, service_only: bool = False) -> dict[str, Any]:
    env = {**os.environ}
    env.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared" / "models"))
    env.setdefault("PENSION_CERT_ORT_THREADS", "2")  # as bench/pipeline.py's default
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {
            "repeat": repeat,
            "batch_rows": rows,
            "clip": f"{CLIP_SOURCE}: first 5 s as 1280x720 H.264 (bench.common.make_clip, as bench/pipeline.py)",
            "cards": "bench.common.render_cards, seeds 1000+ (one beneficiary per row)",
            "challenge": list(CLIP_ACTIONS),
            "ort_threads": env["PENSION_CERT_ORT_THREADS"],
        },
    }
    out["help"] = median_s(["--help"], env, repeat)
    out["models_list"] = median_s(["models", "list", "--pack", "default"], env, repeat)
    with tempfile.TemporaryDirectory() as var:
        # A database command (the daily run on a new embedded database): the service's code, no model run.
        out["cycle_run"] = median_s(["cycle-run"], {**env, "PENSION_CERT_VAR_DIR": var}, repeat)
    if service_only:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        batch, card, clip = make_batch(Path(tmp), rows)
        one = ["certify", "--id-card", str(card), "--video", str(clip), "--challenge", ",".join(CLIP_ACTIONS)]
        out["certify_cold"] = median_s(one, env, max(1, repeat // 2))
        seconds, proc = timed(["certify", "--batch", str(batch), "--root", tmp], env)
        decisions = [json.loads(line).get("decision") for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or len(decisions) != rows:
            raise SystemExit(f"certify --batch failed: {proc.stderr[-400:]}")
        # The batch's first row pays the model loading; the marginal cost is what each further person adds.
        one_row_s, _ = timed(["certify", "--batch", str(_first_row(batch, Path(tmp))), "--root", tmp], env)
        out["certify_batch"] = {
            "rows": rows,
            "total_s": round(seconds, 3),
            "per_certification_s": round(seconds / rows, 3),
            "marginal_per_certification_s": round((seconds - one_row_s) / max(1, rows - 1), 3),
            "decisions": sorted(set(map(str, decisions))),
        }
        out["in_process"] = in_process(batch, Path(tmp), env)
        out["batch_marginal_over_in_process"] = round(
            out["certify_batch"]["marginal_per_certification_s"] / out["in_process"]["per_certification_s"], 2
        )
    pipeline = REPO / "bench" / "results" / "pipeline.json"
    if pipeline.exists():
        total = json.loads(pipeline.read_text())["ours"]["stages_ms"]["total"]["p50"] / 1000
        out["pipeline_total_p50_s"] = total
        out["batch_marginal_over_pipeline"] = round(out["certify_batch"]["marginal_per_certification_s"] / total, 2)
    return out


# The same rows through Certifier.run in one process (warmed up, as bench/pipeline.py times it): the reference
# measured now, under the same machine load as the CLI figures, so their ratio does not depend on the load.
IN_PROCESS = """
import csv, json, statistics, sys, time
from pathlib import Path
from pipelines.decision.runner import Certifier
root = Path(sys.argv[2])
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
cert = Certifier()
cert.warm_up()
def one(row):
    actions = row["challenge"].split(",")
    return cert.run((root / row["id_card"]).read_bytes(), root / row["video"], actions, row["beneficiary_id"])
one(rows[0])
times = []
for row in rows:
    t0 = time.perf_counter(); one(row); times.append(time.perf_counter() - t0)
print(json.dumps({"per_certification_s": round(statistics.median(times), 3), "n": len(times)}))
"""


def in_process(batch: Path, root: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(batch), str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"in-process reference failed: {proc.stderr[-400:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _first_row(batch: Path, tmp: Path) -> Path:
    lines = batch.read_text(encoding="utf-8").splitlines()
    one = tmp / "one.csv"
    one.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    return one


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=10, help="rows of the certify --batch run")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cli.json")
    ap.add_argument("--service-only", action="store_true", help="only --help, models list and cycle-run")
    args = ap.parse_args()
    result = run(args.repeat, args.batch, args.service_only)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
