"""ID-card OCR benchmark: field accuracy, portrait crops and speed, side by side with a plain RapidOCR pass.

    .venv/bin/python bench/id_card.py --n 300 --seed 0 --out bench/results/id_card.json

Sets: ``generated`` (N photographed cards from the seeded generator, any rotation, tilt ≤20°, glare, shadow,
blur, noise, JPEG), optionally ``generated_hard`` (tilt ≤30°, smaller and blurrier cards), ``shared_synthetic``
(../shared/data/idcard/synthetic, 15 cards) and ``samples`` (the 3 portrait-side specimens, labels as printed).
The baseline is one default ``RapidOCR()`` call on the whole photo plus a plain text parser, timed in the same
process with the same thread count (PENSION_CERT_ORT_THREADS, default 2 here).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PENSION_CERT_ORT_THREADS", "2")
os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(ROOT.parent / "shared" / "models"))
os.environ.setdefault("PENSION_CERT_DATA_DIR", str(ROOT.parent / "shared" / "data"))

from pipelines.id_card import FIELDS, IdCardReader  # noqa: E402
from pipelines.id_card.parse import normalize  # noqa: E402
from pipelines.id_card.synthetic import HARD, CardGenerator  # noqa: E402
from pipelines.media import load_image  # noqa: E402

Case = tuple[str, np.ndarray, dict[str, str], np.ndarray | None]


def generated(data_dir: Path, n: int, seed: int, hard: bool) -> Iterator[Case]:
    gen = CardGenerator(data_dir, seed=seed, config=HARD if hard else None)
    for i in range(n):
        card = gen.generate(i)
        yield f"gen{'_hard' if hard else ''}_{i:04d}", card.image, card.fields.as_labels(), card.portrait_quad


def shared_synthetic(data_dir: Path) -> Iterator[Case]:
    with (data_dir / "idcard" / "synthetic_labels.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            labels = {
                "name": row["name"],
                "sex": row["sex"],
                "ethnicity": row["ethnicity"],
                "birth_date": row["birth"],
                "address": row["address"],
                "id_number": row["id_number"],
            }
            yield row["card"], load_image(data_dir / row["card"]), labels, None


def samples(data_dir: Path) -> Iterator[Case]:
    folder = data_dir / "idcard" / "samples"
    with (folder / "samples_labels.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row["id_number_as_printed"]:
                continue
            labels = {
                "name": row["name"],
                "sex": row["sex"],
                "ethnicity": row["ethnicity"],
                "birth_date": row["birth_as_printed"],
                "address": row["address_as_printed"],
                "id_number": row["id_number_as_printed"],
            }
            yield row["file"], load_image(folder / row["file"]), labels, None


def baseline_fields(lines: list[str]) -> dict[str, str | None]:
    """A plain parser over the full-image OCR lines in reading order (what a naive integration does)."""
    text = "".join(normalize(t) for t in lines)
    out: dict[str, str | None] = dict.fromkeys(FIELDS)
    if m := re.search(r"(\d{17}[\dXx])", text):
        out["id_number"] = m[1].upper()
    if m := re.search(r"姓名(.+?)(?=性别|$)", text):
        out["name"] = m[1]
    if m := re.search(r"性别(男|女)", text):
        out["sex"] = m[1]
    if m := re.search(r"民族(.+?)(?=出生|$)", text):
        out["ethnicity"] = m[1]
    if m := re.search(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text):
        out["birth_date"] = f"{int(m[1]):04d}-{int(m[2]):02d}-{int(m[3]):02d}"
    if m := re.search(r"住址(.+?)(?=公民身份号码|\d{17}[\dXx]|$)", text):
        out["address"] = m[1]
    return out


def iou_quad_bbox(bbox: tuple[int, int, int, int] | None, quad: np.ndarray) -> float:
    if bbox is None:
        return 0.0
    x1, y1, x2, y2 = bbox
    (tx1, ty1), (tx2, ty2) = quad.min(axis=0), quad.max(axis=0)
    inter = max(0.0, min(x2, tx2) - max(x1, tx1)) * max(0.0, min(y2, ty2) - max(y1, ty1))
    union = (x2 - x1) * (y2 - y1) + (tx2 - tx1) * (ty2 - ty1) - inter
    return float(inter / union) if union > 0 else 0.0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarize(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    n = len(rows)
    if n == 0:
        return {}
    per_field = {f: sum(r[key]["fields"][f] for r in rows) / n for f in FIELDS}
    out: dict[str, Any] = {
        "cards": n,
        "field_exact": {f: round(v, 4) for f, v in per_field.items()},
        "card_exact": round(sum(all(r[key]["fields"].values()) for r in rows) / n, 4),
        "id_number_exact": round(per_field["id_number"], 4),
        "ms_p50": round(pct([r[key]["ms"] for r in rows], 50), 1),
        "ms_p95": round(pct([r[key]["ms"] for r in rows], 95), 1),
        "ms_mean": round(statistics.fmean(r[key]["ms"] for r in rows), 1),
    }
    if key == "ours":
        out["portrait_verified"] = round(sum(r["ours"]["portrait_verified"] for r in rows) / n, 4)
        with_truth = [r for r in rows if r["ours"].get("portrait_iou") is not None]
        if with_truth:
            out["portrait_crop_success"] = round(
                sum(r["ours"]["portrait_verified"] and r["ours"]["portrait_iou"] >= 0.5 for r in with_truth)
                / len(with_truth),
                4,
            )
        errors: dict[str, int] = {}
        for r in rows:
            for e in r["ours"]["errors"]:
                errors[e] = errors.get(e, 0) + 1
        out["error_codes"] = errors
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(os.environ["PENSION_CERT_DATA_DIR"])
    reader = IdCardReader()
    sets: dict[str, Iterator[Case]] = {"generated": generated(data_dir, args.n, args.seed, False)}
    if args.hard_n:
        sets["generated_hard"] = generated(data_dir, args.hard_n, args.seed, True)
    sets["shared_synthetic"] = shared_synthetic(data_dir)
    sets["samples"] = samples(data_dir)
    warm = next(shared_synthetic(data_dir))[1]
    reader.read(warm)  # first-call allocations are not part of the per-card cost
    if args.baseline:
        reader.ocr.full_pass(warm)
    report: dict[str, Any] = {"sets": {}, "cases": {}}
    for set_name, cases in sets.items():
        rows: list[dict[str, Any]] = []
        for k, (name, image, labels, portrait_quad) in enumerate(cases):
            t0 = time.perf_counter()
            res = reader.read(image)
            ms = (time.perf_counter() - t0) * 1000
            got = res.to_dict()
            row: dict[str, Any] = {
                "card": name,
                "ours": {
                    "ms": ms,
                    "fields": {f: str(got[f]) == labels[f] for f in FIELDS},
                    "errors": got["errors"],
                    "portrait_verified": res.portrait_verified,
                    "portrait_iou": None if portrait_quad is None else iou_quad_bbox(res.portrait_bbox, portrait_quad),
                },
            }
            wrong = {f: got[f] for f in FIELDS if not row["ours"]["fields"][f]}
            if wrong:
                row["ours"]["wrong"] = wrong
            if args.baseline and (args.baseline_n <= 0 or k < args.baseline_n):
                found, secs = reader.ocr.full_pass(image)
                base = baseline_fields([t for _, t, _ in found])
                row["baseline"] = {"ms": secs * 1000, "fields": {f: base[f] == labels[f] for f in FIELDS}}
            rows.append(row)
            if args.verbose:
                print(set_name, name, round(ms), sorted(wrong), file=sys.stderr)
        summary = {"ours": summarize(rows, "ours")}
        with_base = [r for r in rows if "baseline" in r]
        if with_base:
            summary["baseline_full_rapidocr"] = summarize(with_base, "baseline")
            ours_same = summarize(with_base, "ours")
            summary["speedup_p50"] = round(summary["baseline_full_rapidocr"]["ms_p50"] / ours_same["ms_p50"], 2)
            summary["speedup_mean"] = round(summary["baseline_full_rapidocr"]["ms_mean"] / ours_same["ms_mean"], 2)
        report["sets"][set_name] = summary
        report["cases"][set_name] = [r for r in rows if "wrong" in r["ours"] or r["ours"]["errors"]]
    report["config"] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "n": args.n,
        "seed": args.seed,
        "hard_n": args.hard_n,
        "threads": os.environ["PENSION_CERT_ORT_THREADS"],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load_avg_end": list(os.getloadavg()),
    }
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="generated cards (default 300)")
    p.add_argument("--hard-n", type=int, default=0, help="generated cards of the harder set (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the full-image RapidOCR pass")
    p.add_argument("--baseline-n", type=int, default=0, help="baseline on the first N cards of each set (0 = all)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "id_card.json")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report["sets"], ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
