"""The screen-light challenge measured: chance on real media, and sensitivity to a synthetic reflection.

    python bench/liveness_light.py samples --index ~/.cache/pension-cert/liveness/presentations.csv \\
        --per-subject 2 --out /tmp/light/samples.jsonl.gz            # real clips, no screen light (slow: models)
    python bench/liveness_light.py sensitivity --index .../presentations.csv --out /tmp/light/sensitivity.jsonl.gz
    python bench/liveness_light.py evaluate --samples bench/results/liveness_light.samples.jsonl.gz \\
        --sensitivity bench/results/liveness_light.sensitivity.jsonl.gz --out bench/results/liveness_light.json \\
        [--write-calibration]                                          # no models: seconds

* `samples` runs the production checker (no challenge, no sequence) on real clips recorded without any screen
  light, genuine ones and attacks (prints, photos and videos on a phone or tablet), a few per subject and kind,
  plus the clips of ``shared/data``; it keeps every tracked frame's face and background colours.
* `sensitivity` injects a sequence's reflection (pipelines/liveness/evaluation/light.py, SYNTHETIC) into real
  genuine clips at several amplitudes and capture conditions, and a whole-frame tint (a screen replaying under the
  phone's light), re-encodes them and keeps the colours the checker sampled.
* `evaluate` draws random sequences per clip (seeded by the clip) and reads them against the samples. Chance:
  the threshold is chosen on subject-disjoint calibration folds (the smallest at which at most ``--choice-target``
  of the calibration draws read "seen") and measured on the held-out fold; the deployed threshold is chosen the
  same way on all clips (``--write-calibration``). Sensitivity: the share of injected clips read "seen" per
  amplitude and condition at the deployed threshold, the whole-frame tints' statuses, and the injected clips read
  against sequences other than the one injected.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import os
import sys
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from random import Random
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if (REPO.parent / "shared/models").is_dir():
    os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared/models"))
os.environ.setdefault("PENSION_CERT_ORT_THREADS", "1")

from pipelines.liveness.evaluation.intervals import clopper_pearson  # noqa: E402
from pipelines.liveness.evaluation.light import random_sequences  # noqa: E402
from pipelines.liveness.light import LightSequence  # noqa: E402
from pipelines.liveness.light_response import (  # noqa: E402
    CALIBRATION_PATH,
    DECODE_FROM,
    ColourSample,
    LightResponse,
    LightRules,
    LightStatus,
    analyse_many,
    covered_steps,
)

DEFAULT_DATA = Path(os.environ.get("PENSION_CERT_DATA_DIR", REPO.parent / "shared/data"))
AMPLITUDES = (0.005, 0.01, 0.02, 0.04, 0.08)
CONDITIONS = ("clean", "low_light", "240p_crf35", "vp8")
DRAWS_PER_CLIP = 100
FOLDS = 5


# ------------------------------------------------------------------------------------------------------ records


# The analysis never reads past the sequence's end (6.9 s for 8 steps), the latest lag searched (1.5 s) and the
# drift fit's pad (1 s). The committed records were cut at 8.5 s, before the pad: the frames they lack changed no
# figure (cutting the chance records at 7.0 s reads the same count).
KEEP_S = 9.4


def pack_samples(samples: Iterable[ColourSample]) -> list[list[float]]:
    """Compact JSON form: [t, face B, G, R, background B, G, R] (background left off when None), up to KEEP_S."""
    out = []
    for s in samples:
        if s.t > KEEP_S:
            break
        row = [round(s.t, 2), *(round(v, 1) for v in s.face)]
        if s.background is not None:
            row += [round(v, 1) for v in s.background]
        out.append(row)
    return out


def unpack_samples(rows: Iterable[Sequence[float]]) -> list[ColourSample]:
    out = []
    for r in rows:
        back = (float(r[4]), float(r[5]), float(r[6])) if len(r) >= 7 else None
        out.append(ColourSample(float(r[0]), (float(r[1]), float(r[2]), float(r[3])), back))
    return out


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            records.extend(json.loads(line) for line in fh if line.strip())
    return records


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(path, "wb", mtime=0) as raw:
        for r in records:
            raw.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))


# ----------------------------------------------------------------------------------------------------- evaluate


def clip_sequences(key: str, k: int = DRAWS_PER_CLIP) -> list[LightSequence]:
    """The sequences drawn for one clip: seeded by its key, so every run draws the same."""
    return random_sequences(k, zlib.crc32(key.encode("utf-8")))


def _seen_score(r: LightResponse, rules: LightRules) -> float | None:
    """The correlation a draw would need the threshold under to read "seen" (-inf: never; None: too short)."""
    if r.status is LightStatus.TOO_SHORT or r.correlation is None:
        return None
    assert r.face_gain is not None and r.background_gain is not None
    quiet = r.face_gain > 0 and r.background_gain <= rules.max_background_ratio * r.face_gain
    return r.correlation if quiet and r.steps_matched == r.steps_covered else float("-inf")


def chance_scores(records: Sequence[dict[str, Any]], rules: LightRules, k: int) -> dict[str, list[float]]:
    """Per clip key, the seen-scores of its ``k`` drawn sequences (clips too short for every draw left out)."""
    out: dict[str, list[float]] = {}
    # No status at any threshold (nothing reads "seen" or "flat"): every number is then the one at the lag where
    # the face minus the background follows best, and the scores do not depend on the threshold in force.
    unjudged = replace(rules, threshold=float("inf"))
    for r in records:
        responses = analyse_many(unpack_samples(r["samples"]), clip_sequences(r["key"], k), unjudged)
        scores = [s for s in (_seen_score(x, rules) for x in responses) if s is not None]
        if scores:
            out[r["key"]] = scores
    return out


def choose_threshold(scores: Sequence[float], target: float, floor: float = 0.0) -> float:
    """The smallest threshold (3 decimals, not under ``floor``) at which at most ``target`` of the draws reach it.
    The evaluation's floor is the analysis' own (``DECODE_FROM``: under it no colour is read back, so nothing is
    "seen" whatever the threshold): when fewer than ``target`` of the draws can read "seen" at all, the floor is the
    threshold in force, and the calibration says so rather than a 0 that does not act."""
    values = np.sort(np.asarray(scores, dtype=float))[::-1]
    allowed = int(np.floor(target * len(values)))
    if allowed >= len(values) or not np.isfinite(values[allowed]):
        return floor
    return max(floor, float(np.ceil((values[allowed] + 1e-9) * 1000) / 1000))


def subject_folds(subjects: Sequence[str], k: int, seed: int) -> dict[str, int]:
    names = sorted(set(subjects))
    Random(seed).shuffle(names)
    return {s: i % k for i, s in enumerate(names)}


def _rate(events: int, n: int) -> dict[str, Any]:
    interval = clopper_pearson(events, n).to_list() if n else [0.0, 1.0]
    return {
        "events": events,
        "n": n,
        "rate": round(events / n, 5) if n else None,
        "clopper_pearson_95": interval,
    }


def _bootstrap(per_subject: dict[str, tuple[int, int]], seed: int, reps: int = 2000) -> list[float]:
    """95 % interval of the pooled rate when whole subjects are resampled (the draws of one clip are not
    independent of each other: a clip that wobbles in step with some sequences matches many)."""
    units = list(per_subject.values())
    if not units:
        return [0.0, 1.0]
    ev = np.array([u[0] for u in units], dtype=float)
    n = np.array([u[1] for u in units], dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(units), (reps, len(units)))
    rates = ev[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1)
    return [round(float(np.percentile(rates, 2.5)), 5), round(float(np.percentile(rates, 97.5)), 5)]


def evaluate_chance(
    records: Sequence[dict[str, Any]], rules: LightRules, target: float, k: int, seed: int
) -> dict[str, Any]:
    scores = chance_scores(records, rules, k)
    by_key = {r["key"]: r for r in records}
    folds = subject_folds([by_key[key]["subject"] for key in scores], FOLDS, seed)
    fold_of = {key: folds[by_key[key]["subject"]] for key in scores}
    held: dict[str, list[tuple[str, int, int]]] = defaultdict(list)  # group → (subject, events, n)
    thresholds = []
    for f in range(FOLDS):
        cal = [s for key, ss in scores.items() if fold_of[key] != f for s in ss]
        thr = choose_threshold(cal, target, DECODE_FROM)
        thresholds.append(thr)
        for key, ss in scores.items():
            if fold_of[key] != f:
                continue
            rec = by_key[key]
            events = sum(1 for s in ss if s >= thr)
            for group in ("all", f"label:{rec['label']}", f"attack:{rec['attack_type']}", f"source:{rec['source']}"):
                held[group].append((rec["subject"], events, len(ss)))
    measured = {}
    for group, rows in sorted(held.items()):
        per_subject: dict[str, tuple[int, int]] = {}
        for subject, e, n in rows:
            a, b = per_subject.get(subject, (0, 0))
            per_subject[subject] = (a + e, b + n)
        ev, n = sum(e for _, e, _ in rows), sum(n for _, _, n in rows)
        measured[group] = {
            **_rate(ev, n),
            "clips": len(rows),
            "subjects": len(per_subject),
            "clips_with_any_seen": sum(1 for _, e, _ in rows if e),
            "subject_bootstrap_95": _bootstrap(per_subject, seed),
        }
    deployed = choose_threshold([s for ss in scores.values() for s in ss], target, DECODE_FROM)
    too_short = sorted(r["key"] for r in records if r["key"] not in scores)
    return {
        "draws_per_clip": k,
        "choice_target": target,
        "folds": FOLDS,
        "fold_thresholds": thresholds,
        "held_out": measured,
        "deployed_threshold": deployed,
        "clips": len(scores),
        "clips_too_short": len(too_short),
        "subjects": len({by_key[key]["subject"] for key in scores}),
    }


def steps_shown(samples: Sequence[ColourSample], seq: LightSequence, lag_s: float, rules: LightRules) -> int:
    """Steps of ``seq`` the analysis counts at the lag it was injected with: fewer than ``min_steps`` and the clip
    ended before enough of the sequence was shown (a 5-s clip with a late lag), which the page's takes, recorded
    past the sequence's end, never do."""
    t = np.array([s.t for s in samples if s.background is not None])
    return int(covered_steps(t, seq, lag_s, rules).sum())


def evaluate_sensitivity(records: Sequence[dict[str, Any]], rules: LightRules, wrong_k: int) -> dict[str, Any]:
    cells: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    wrong = [0, 0]
    for r in records:
        samples = unpack_samples(r["samples"])
        seq = LightSequence.from_dict(r["sequence"])
        status = analyse_many(samples, [seq], rules)[0].status.value
        cell = f"{r['kind']}/{r['condition']}/{r['amplitude']}"
        cells[cell][status] += 1
        cells[cell]["n"] += 1
        if steps_shown(samples, seq, float(r.get("lag_s", 0.0)), rules) >= rules.min_steps:
            cells[cell]["shown"] += 1
            cells[cell]["shown_seen"] += status == LightStatus.SEEN.value
        if r["kind"] == "face":
            others = [s for s in clip_sequences(r["key"] + "/wrong", wrong_k) if s.colours != seq.colours]
            wrong[0] += sum(1 for x in analyse_many(samples, others, rules) if x.status is LightStatus.SEEN)
            wrong[1] += len(others)
    table: dict[str, Any] = {}
    for cell, c in sorted(cells.items()):
        n = c["n"]
        analysable = n - c.get("too_short", 0)
        table[cell] = {
            "statuses": {k: v for k, v in sorted(c.items()) if k not in ("n", "shown", "shown_seen")},
            "seen": _rate(c.get("seen", 0), analysable),
            # the clips that lasted until min_steps steps were shown at the injected lag, as a page's take does
            "seen_when_shown": _rate(c.get("shown_seen", 0), c.get("shown", 0)),
            "n": n,
        }
    return {"cells": table, "wrong_sequence_seen": _rate(wrong[0], wrong[1])}


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    base = LightRules.load(args.calibration)
    # The threshold does not enter the seen-scores: chance is computed once and the threshold chosen on it.
    chance = evaluate_chance(read_records(args.samples), base, args.choice_target, args.draws, args.seed)
    rules = replace(base, threshold=chance["deployed_threshold"])
    report: dict[str, Any] = {
        "what": "screen-light challenge: chance on real clips recorded without the light; synthetic sensitivity",
        "rules": {k: getattr(rules, k) for k in LightRules.__dataclass_fields__ if k != "version"},
        "chance": chance,
    }
    if args.sensitivity:
        report["sensitivity"] = evaluate_sensitivity(read_records(args.sensitivity), rules, args.wrong_draws)
        report["sensitivity"]["note"] = (
            "SYNTHETIC reflections injected into real genuine clips (pipelines/liveness/evaluation/light.py); "
            "a pilot on real phones must measure the real amplitude"
        )
    return report


def calibration_entry(report: dict[str, Any], version: str) -> dict[str, Any]:
    chance = report["chance"]
    floor = (
        f"; the analysis' floor ({DECODE_FROM}, under which no colour is read back): fewer than the target of the "
        "draws can read 'seen' at any threshold"
        if chance["deployed_threshold"] == DECODE_FROM
        else ""
    )
    return {
        "version": version,
        **report["rules"],
        "chosen": (
            f"smallest threshold at which at most {chance['choice_target']:.1%} of {chance['draws_per_clip']} "
            f"random sequences per clip read 'seen' on {chance['clips']} real clips recorded without screen light "
            f"({chance['subjects']} subjects); held out by subject-disjoint folds: "
            f"{chance['held_out']['all']['rate']:.2%} (bench/results/liveness_light.json){floor}"
        ),
        "target": "a clip carrying no response is read 'seen' for at most 1 % of random sequences",
    }


# ------------------------------------------------------------------------------------------ scoring (models)


def _index_rows(index: Path, per_subject: int, seed: int) -> list[dict[str, str]]:
    """A stratified subset: at most ``per_subject`` clips per (subject, attack type, medium)."""
    with index.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = Random(seed)
    rng.shuffle(rows)
    taken: dict[tuple[str, str, str], int] = defaultdict(int)
    out = []
    for r in rows:
        stratum = (r["subject"], r["attack_type"], r.get("support", ""))
        if taken[stratum] < per_subject:
            taken[stratum] += 1
            out.append({**r, "path": str(index.parent / r["path"]), "key": r["path"]})
    return sorted(out, key=lambda r: r["key"])


def _shared_rows(data: Path) -> list[dict[str, str]]:
    rows = []
    with (data / "spoof/spoof.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["media"] == "video":
                attack = "replay_phone" if r["attack_type"].startswith("replay") else r["attack_type"]
                rows.append(
                    {
                        "key": f"shared/{r['path']}",
                        "path": str(data / r["path"]),
                        "label": r["label"],
                        "attack_type": attack,
                        "subject": f"shared:{r['identity']}",
                        "source": "shared",
                    }
                )
    with (data / "videos/videos.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    "key": f"shared/{r['path']}",
                    "path": str(data / r["path"]),
                    "label": "real",
                    "attack_type": "none",
                    "subject": f"shared:{r['identity']}",
                    "source": "shared",
                }
            )
    return rows


def _checker(max_duration_s: float = 40.0) -> Any:
    from models.packs import load_pack
    from pipelines.liveness import LivenessChecker, LivenessConfig, VideoLimits

    config = LivenessConfig(check_duplicates=False, limits=VideoLimits(max_duration_s=max_duration_s))
    return LivenessChecker(load_pack(), config)


def score_samples(args: argparse.Namespace) -> int:
    from pipelines.errors import PipelineError

    rows = [*_shared_rows(args.data)] + [r for i in args.index for r in _index_rows(i, args.per_subject, args.seed)]
    done = {r["key"] for r in read_records([args.out])} if args.out.exists() else set()
    checker = _checker()
    records = read_records([args.out]) if args.out.exists() else []
    for i, row in enumerate(rows):
        if row["key"] in done:
            continue
        try:
            result = checker.check(Path(row["path"]))
        except PipelineError as exc:
            print(f"skip {row['key']}: {exc}", file=sys.stderr)
            continue
        source = row.get("source", "").split("@")[0].split("/")[-1] or "shared"
        records.append(
            {
                "key": row["key"],
                "label": row["label"],
                "attack_type": row["attack_type"],
                "subject": row["subject"],
                "source": source,
                "duration_s": round(result.duration_s, 2),
                "samples": pack_samples(result.colour_samples),
            }
        )
        if i % 25 == 0:
            print(f"{i}/{len(rows)}", file=sys.stderr)
            write_records(args.out, records)
    write_records(args.out, records)
    return 0


def _condition(frames: list[np.ndarray], condition: str, seed: int) -> tuple[list[np.ndarray], str]:
    """Frames as a poorer capture would give them, and the codec to encode them with."""
    import cv2

    rng = np.random.default_rng(seed)
    if condition == "low_light":
        dark = [
            np.clip(f.astype(np.float32) * 0.3 + rng.normal(0, 3.0, f.shape), 0, 255).astype(np.uint8) for f in frames
        ]
        return dark, "libx264"
    if condition == "240p_crf35":
        h, w = frames[0].shape[:2]
        scale = 320 / max(h, w)
        size = (round(w * scale / 2) * 2, round(h * scale / 2) * 2)
        return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames], "libx264-crf35"
    if condition == "vp8":
        return frames, "libvpx"
    return frames, "libx264"


def _encode(path: Path, frames: list[np.ndarray], fps: int, codec: str) -> Path:
    from tests.pipelines.liveness.videos import write_video

    if codec == "libx264-crf35":
        import av

        with av.open(str(path), "w") as container:
            stream: Any = container.add_stream("libx264", rate=fps)
            stream.pix_fmt, stream.width, stream.height = "yuv420p", frames[0].shape[1], frames[0].shape[0]
            stream.options = {"preset": "ultrafast", "crf": "35"}
            for img in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return path
    return write_video(path.with_suffix(".webm") if codec == "libvpx" else path, frames, fps=fps, codec=codec)


def sensitivity_runs(
    checker: Any, key: str, path: Path, subject: str, amplitudes: Sequence[float], conditions: Sequence[str]
) -> list[dict[str, Any]]:
    """Inject a fresh sequence at each amplitude (per condition), and whole-frame tints, into one real clip."""
    from pipelines.liveness.evaluation.light import Injection, face_masks, inject, read_clip

    fps = 30
    frames = read_clip(path, KEEP_S, fps)  # the sequence ends at 6.9 s; lags and pad reach 2.5 s past it
    times = [i / fps for i in range(len(frames))]
    if len(frames) < 4.9 * fps:
        return []  # shorter than the sequence needs (too_short, not a measure of sensitivity)

    def detect(img: np.ndarray) -> tuple[float, float, float, float] | None:
        dets = checker.matcher.detect(img)
        return dets[0].bbox if dets else None

    masks = face_masks(frames, detect)
    runs: list[dict[str, Any]] = []
    plan = [("face", c, a) for c in conditions for a in amplitudes]
    plan += [("whole_frame", "clean", a) for a in amplitudes if a >= 0.02]
    plan += [("none", "clean", 0.0)]
    with tempfile.TemporaryDirectory() as tmp:
        for kind, condition, amplitude in plan:
            run_key = f"{key}|{kind}|{condition}|{amplitude}"
            seed = zlib.crc32(run_key.encode("utf-8"))
            seq = random_sequences(1, seed)[0]
            lag = Random(seed).uniform(-0.2, 1.2)
            spec = Injection(amplitude, lag_s=lag, whole_frame=kind == "whole_frame", seed=seed)
            lit = inject(frames, times, masks, seq, spec)
            shown, codec = _condition(lit, condition, seed)
            video = _encode(Path(tmp) / "clip.mp4", shown, fps, codec)
            result = checker.check(video, None, seq)
            runs.append(
                {
                    "key": run_key,
                    "clip": key,
                    "subject": subject,
                    "kind": kind,
                    "condition": condition,
                    "amplitude": amplitude,
                    "lag_s": round(lag, 3),
                    "sequence": seq.to_dict(),
                    "samples": pack_samples(result.colour_samples),
                }
            )
    return runs


def score_sensitivity(args: argparse.Namespace) -> int:
    """Real genuine clips at least ~5 s long: shared/data's, the older speakers', a few Replay-Attack ones."""
    clips = [(r["key"], Path(r["path"]), r["subject"]) for r in _shared_rows(args.data) if r["label"] == "real"]
    for index in args.index:
        rows = [r for r in _index_rows(index, 1, args.seed) if r["label"] == "real"]
        rng = Random(args.seed)
        rng.shuffle(rows)
        by_source: dict[str, int] = defaultdict(int)
        for r in rows:
            src = r["source"].split("@")[0]
            if float(r["n_frames"]) / float(r["fps"]) >= 4.9 and by_source[src] < args.per_source:
                by_source[src] += 1
                clips.append((r["key"], Path(r["path"]), r["subject"]))
    checker = _checker()
    records = read_records([args.out]) if args.out.exists() else []
    done = {r["clip"] for r in records}
    for key, path, subject in clips:
        if key in done:
            continue
        try:
            records.extend(sensitivity_runs(checker, key, path, subject, AMPLITUDES, CONDITIONS))
        except Exception as exc:  # one bad clip must not end a long run
            print(f"skip {key}: {exc}", file=sys.stderr)
        write_records(args.out, records)
        print(f"{key}: {len(records)} runs", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("samples")
    sp.add_argument("--index", type=Path, action="append", default=[])
    sp.add_argument("--data", type=Path, default=DEFAULT_DATA)
    sp.add_argument("--per-subject", type=int, default=2)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", type=Path, required=True)
    ss = sub.add_parser("sensitivity")
    ss.add_argument("--index", type=Path, action="append", default=[])
    ss.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ss.add_argument("--per-source", type=int, default=6)
    ss.add_argument("--seed", type=int, default=0)
    ss.add_argument("--out", type=Path, required=True)
    ev = sub.add_parser("evaluate")
    ev.add_argument("--samples", type=Path, action="append", required=True)
    ev.add_argument("--sensitivity", type=Path, action="append", default=[])
    ev.add_argument("--calibration", type=Path, default=CALIBRATION_PATH)
    ev.add_argument("--choice-target", type=float, default=0.005)
    ev.add_argument("--draws", type=int, default=DRAWS_PER_CLIP)
    ev.add_argument("--wrong-draws", type=int, default=20)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--out", type=Path, default=REPO / "bench/results/liveness_light.json")
    ev.add_argument("--write-calibration", action="store_true")
    ev.add_argument("--version", help="the calibration's version (default: today's date, .1)")
    args = ap.parse_args(argv)
    if args.cmd == "samples":
        return score_samples(args)
    if args.cmd == "sensitivity":
        return score_sensitivity(args)
    report = evaluate(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.write_calibration:
        entry = calibration_entry(report, args.version or dt.date.today().isoformat() + ".1")
        args.calibration.write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {"chance": report["chance"]["held_out"].get("all"), "threshold": report["chance"]["deployed_threshold"]}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
