"""Face-matching benchmark: accuracy on a labelled pair list and speed on this machine, per model pack.

    python bench/face_match.py --pairs ../shared/data/faces/pairs.csv --root ../shared/data/faces \
        --packs default,insightface --out bench/results/face_match.json \
        [--population-data ~/.cache/pension-cert/faces]

With ``--population-data`` (the cache of scripts/fetch_face_data.sh) each pack also reports, at its deployed
thresholds: FAR on held-out East-Asian adult and 50+ impostors, genuine acceptance (LFW older pairs of the pair
list, East-Asian celebrities, FIW East-Asian families), kinship pairs by relation, the relative-rule margin, and
what AS-norm would change (docs/face_data.md).

Each pack runs in its own subprocess so that its peak memory is its own. Timings use
PENSION_CERT_ORT_THREADS (default here: 2, the cores of the target machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.packs import load_pack  # noqa: E402
from pipelines.errors import PipelineError  # noqa: E402
from pipelines.face_match import FaceMatcher, align_face, cosine  # noqa: E402
from pipelines.face_match.evaluation import read_pairs  # noqa: E402
from pipelines.face_match.metrics import eer, roc_auc, threshold_at_far  # noqa: E402
from pipelines.face_match.population.pairs import Scores  # noqa: E402
from pipelines.media import load_image  # noqa: E402


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p95": round(float(np.percentile(arr, 95)), 3)}


def lfw_older_genuine(pairs_csv: Path, embeddings: dict[str, np.ndarray]) -> Scores:
    """Genuine pairs of the pair list's older_extra subset (LFW people about 60 or older), unit = identity."""
    import csv

    values, units = [], []
    with pairs_csv.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            a, b = r["path_a"], r["path_b"]
            if r.get("subset") == "older_extra" and r["label"] == "1" and a in embeddings and b in embeddings:
                values.append(cosine(embeddings[a], embeddings[b]))
                units.append(a.split("/")[1])
    ids = np.unique(units, return_inverse=True)[1] if units else np.zeros(0, int)
    return Scores(np.asarray(values, np.float32), ids, ids)


def population_block(matcher: FaceMatcher, data_dir: Path, lfw_older: Scores) -> dict[str, Any]:
    from pipelines.face_match.population.dataset import load_population_data
    from pipelines.face_match.population.report import population_report

    return population_report(load_population_data(matcher, data_dir), matcher.thresholds, lfw_older)


def run_pack(
    pack: str, pairs_csv: Path, root: Path, timing_pairs: int, population_data: Path | None = None
) -> dict[str, Any]:
    matcher = FaceMatcher(load_pack(pack))
    pairs = read_pairs(pairs_csv)
    warm = load_image(root / pairs[0].path_a)
    for _ in range(3):
        matcher.observe(warm, allow_multiple=True)

    det_ms: list[float] = []
    emb_ms: list[float] = []
    face_ms: list[float] = []
    face_noflip_ms: list[float] = []
    embeddings: dict[str, np.ndarray] = {}
    failures: dict[str, str] = {}
    for rel in dict.fromkeys(p for pr in pairs for p in (pr.path_a, pr.path_b)):
        try:
            image = load_image(root / rel)
            t0 = time.perf_counter()
            det, _ = matcher.primary_face(image)
            t1 = time.perf_counter()
            aligned = align_face(image, det.kps)
            t2 = time.perf_counter()
            embeddings[rel] = matcher.embed_aligned([aligned])[0]
            t3 = time.perf_counter()
            matcher.recognizer.embed([aligned])  # the same crop without flip TTA
            t4 = time.perf_counter()
        except PipelineError as exc:
            failures[rel] = exc.reason.value
            continue
        det_ms.append((t1 - t0) * 1e3)
        emb_ms.append((t3 - t2) * 1e3)
        face_ms.append((t3 - t0) * 1e3)
        face_noflip_ms.append((t2 - t0 + t4 - t3) * 1e3)

    genuine = np.asarray(
        [
            cosine(embeddings[p.path_a], embeddings[p.path_b])
            for p in pairs
            if p.genuine and p.path_a in embeddings and p.path_b in embeddings
        ]
    )
    impostor = np.asarray(
        [
            cosine(embeddings[p.path_a], embeddings[p.path_b])
            for p in pairs
            if not p.genuine and p.path_a in embeddings and p.path_b in embeddings
        ]
    )

    # End to end per pair, nothing cached: decode both files, detect, align, quality, embed, compare.
    pair_ms: list[float] = []
    for p in pairs[:timing_pairs]:
        t0 = time.perf_counter()
        try:
            a = matcher.observe(load_image(root / p.path_a))
            b = matcher.observe(load_image(root / p.path_b))
            matcher.compare(a, [b])
        except PipelineError:
            continue
        pair_ms.append((time.perf_counter() - t0) * 1e3)

    th = matcher.thresholds
    population = (
        population_block(matcher, population_data, lfw_older_genuine(pairs_csv, embeddings))
        if (population_data is not None)
        else None
    )
    return {
        "pack": pack,
        "models": matcher.model_versions(),
        "pairs": len(pairs),
        "scored_pairs": {"genuine": len(genuine), "impostor": len(impostor)},
        "images_without_usable_face": failures,
        "roc_auc": round(roc_auc(genuine, impostor), 6),
        "eer": round(eer(genuine, impostor), 6),
        "tar_at_far": {
            key: round(threshold_at_far(genuine, impostor, far).tar, 6) for key, far in (("1e-2", 1e-2), ("1e-3", 1e-3))
        },
        "note_far": "TAR at FAR on the pair list itself (its impostor count bounds the FAR resolution)",
        "calibrated_thresholds": {
            "accept": th.accept,
            "review": th.review,
            "version": th.calibration_version,
            "accept_population": th.accept_population,
            "review_population": th.review_population,
        },
        "bands_on_pairs": {
            "genuine_accept_rate": round(float(np.mean(genuine >= th.accept)), 6),
            "impostor_accept_rate": round(float(np.mean(impostor >= th.accept)), 6),
            "impostor_review_or_accept_rate": round(float(np.mean(impostor >= th.review)), 6),
        },
        "ms_detection": percentiles(det_ms),
        "ms_embedding": percentiles(emb_ms),
        "flip_tta": matcher.config.flip_tta,
        "ms_detect_align_embed_one_face": percentiles(face_ms),
        "ms_detect_align_embed_one_face_without_flip": percentiles(face_noflip_ms),
        "ms_per_pair_end_to_end": percentiles(pair_ms),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "population": population,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=Path, default=REPO.parent / "shared/data/faces/pairs.csv")
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared/data/faces")
    ap.add_argument("--packs", default="default,insightface")
    ap.add_argument("--timing-pairs", type=int, default=200, help="pairs timed end to end")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/face_match.json")
    ap.add_argument("--population-data", type=Path, help="face cache of scripts/fetch_face_data.sh")
    ap.add_argument("--single-pack", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("PENSION_CERT_ORT_THREADS", "2")
    if args.single_pack:
        json.dump(
            run_pack(args.single_pack, args.pairs, args.root, args.timing_pairs, args.population_data), sys.stdout
        )
        return 0
    results = []
    for pack in args.packs.split(","):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--single-pack",
                pack,
                "--pairs",
                str(args.pairs),
                "--root",
                str(args.root),
                "--timing-pairs",
                str(args.timing_pairs),
                *(["--population-data", str(args.population_data)] if args.population_data else []),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(proc.stdout))
    report = {
        "benchmark": "face_match",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "ort_threads": int(os.environ["PENSION_CERT_ORT_THREADS"]),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
