"""ISO/IEC 30107-3 evaluation of the liveness stage: score presentations, then evaluate the scores.

    python bench/liveness_eval.py score --index presentations.csv [--index more.csv] --out records.jsonl [--limit N]
    python bench/liveness_eval.py evaluate --records records.jsonl [--records ...] --folds 5 --seed 0 \\
        --out bench/results/liveness_eval.json --markdown docs/liveness_eval_table.md
    python bench/liveness_eval.py shared --out bench/results/liveness_eval.shared.json   # the small dev set

* `score` runs the production checker (no challenge, duplicate check off) on every row of presentation CSVs
  (columns `path,label,attack_type,subject,condition,source,...`; paths relative to the CSV's folder) and writes
  one JSON line per row. It resumes: keys already in the output are skipped. Undecodable or out-of-limit media
  are recorded with an `error` field.
* `evaluate` turns the records into `Presentation`s (`presentation_from_record`, with `record_flags`) and runs
  `pipelines.liveness.evaluation.evaluate`. It needs no model files.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import gzip
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if (REPO.parent / "shared/models").is_dir():
    os.environ.setdefault("PENSION_CERT_MODELS_DIR", str(REPO.parent / "shared/models"))
# One inference thread: the checker decodes on a second thread, so the two cores are both in use.
os.environ.setdefault("PENSION_CERT_ORT_THREADS", "1")

from bench.liveness_report import markdown_table  # noqa: E402
from pipelines.decision.rules import DecisionConfig  # noqa: E402
from pipelines.liveness.actions import ActionEvent  # noqa: E402
from pipelines.liveness.calibrate import write_entry  # noqa: E402
from pipelines.liveness.evaluation import (  # noqa: E402
    ALL,
    APCER,
    BPCER,
    NO_ATTACK,
    REAL,
    Presentation,
    Protocol,
    ThresholdChoice,
    classify,
    evaluate,
    measure,
    rates_to_dict,
    report_to_dict,
    retake_at,
    under_challenge,
    with_motion_rule,
)
from pipelines.liveness.evaluation.learned import evaluate_fused, rescored  # noqa: E402
from pipelines.liveness.motion import DEFAULT_MIN_RATIO  # noqa: E402
from pipelines.liveness.passive import LogisticFusion  # noqa: E402

SPOOF_CODE = "SPOOF_SUSPECTED"
RIGID_CODE = "SPOOF_RIGID_MOTION"
RETAKE_PREFIX = "CAPTURE_"
# Heavy and useless for the evaluation: 64 hex digits × 4 per second of video.
HEAVY_KEYS = ("frame_hashes",)
DEFAULT_DATA = REPO.parent / "shared/data"


# ------------------------------------------------------------------------------------------------------- records


def record_flags(record: dict[str, Any]) -> tuple[bool, bool, bool, float | None]:
    """(hard_reject, retake, capture_poor, motion_ratio) of one scored record: the one place mapping findings to
    the protocol.

    * hard reject: any code other than SPOOF_SUSPECTED (re-decided at each threshold), SPOOF_RIGID_MOTION
      (re-decided at each motion ratio) and the `CAPTURE_*` codes: FACE_NOT_FOUND, FACE_CHANGED_IN_VIDEO, ...
    * retake (whatever the threshold): a media error (`error`: the file could not be analysed, e.g.
      VIDEO_TOO_LONG, and the citizen is asked to film again), or no face in the dark (`CAPTURE_*` with a hard
      finding the stage forgives, see pipelines/liveness/fusion.py).
    * capture_poor: the capture block lists retake codes; whether that becomes a retake depends on the passive
      score against the threshold and on the motion rule (`evaluation.retake_at`, `with_motion_rule`).
    * motion_ratio: the motion block's ratio when the face moved enough to be judged (`live` not null).
    """
    reasons = [str(r) for r in record.get("reasons") or []]
    result = record.get("result") or {}
    capture_poor = bool((result.get("capture") or {}).get("retake")) or any(
        r.startswith(RETAKE_PREFIX) for r in reasons
    )
    hard_codes = [r for r in reasons if r not in (SPOOF_CODE, RIGID_CODE) and not r.startswith(RETAKE_PREFIX)]
    dark_no_face = result.get("verdict") == "retake" and bool(hard_codes)
    motion = result.get("motion") or {}
    ratio = None if motion.get("live") is None else float(motion["ratio"])
    retake = bool(record.get("error")) or dark_no_face
    return bool(hard_codes) and not dark_no_face, retake, capture_poor, ratio


def presentation_from_record(record: dict[str, Any]) -> Presentation:
    hard, retake, capture_poor, motion_ratio = record_flags(record)
    label = str(record["label"])
    score = record.get("passive_score")
    # The index's review column if it has one, else the checker's own verdict (None: neither says).
    verdict = (record.get("result") or {}).get("verdict")
    review = record.get("review", None if verdict is None else verdict == "review")
    return Presentation(
        key=str(record["key"]),
        label=label,
        attack_type=NO_ATTACK if label == REAL else str(record.get("attack_type") or "unspecified"),
        condition=str(record.get("condition") or "unspecified"),
        subject=str(record.get("subject") or ""),
        # A media error has no score; it is a retake, so the score never decides its classification.
        score=0.0 if score is None else float(score),
        hard_reject=hard,
        retake=retake,
        capture_poor=capture_poor,
        motion_ratio=motion_ratio,
        review=None if review in (None, "") else str(review).lower() in ("1", "true", "yes"),
    )


def with_models(record: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The record as if the stage had run only the anti-spoofing models ``names``: its passive score becomes their
    mean (each model's own score is kept in `result.passive_by_model`), and the model versions drop the others.

    Exact, because the stage's score is the mean over models of the mean over the same frames; what depends on
    the score (SPOOF_SUSPECTED, retakes) is re-decided by the protocol at each threshold anyway."""
    result = record.get("result")
    if not result or record.get("passive_score") is None:
        return record
    by_model: dict[str, float] = result.get("passive_by_model") or {}
    if not by_model:
        return record  # no face was scored: the score (0.0) is the same for any ensemble
    missing = [n for n in names if n not in by_model]
    if missing:
        raise ValueError(f"{record['key']}: not scored by {', '.join(missing)} (score again with --pack)")
    score = round(sum(by_model[n] for n in names) / len(names), 4)
    kept = {f"antispoof:{n}" for n in names}
    models = {k: v for k, v in (result.get("models") or {}).items() if not k.startswith("antispoof:") or k in kept}
    return {**record, "passive_score": score, "result": {**result, "passive_score": score, "models": models}}


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """JSON lines, plain or gzip-compressed (`.gz`, as the committed `bench/results` records are)."""
    records: list[dict[str, Any]] = []
    for path in paths:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            records.extend(json.loads(line) for line in fh if line.strip())
    return records


# ------------------------------------------------------------------------------------------------------- scoring


def read_index(csv_path: Path, root: Path | None = None) -> list[dict[str, str]]:
    """Rows of a presentations CSV with `file` (absolute) and `key` (the path relative to `root`, default cwd)."""
    base = (root or Path.cwd()).resolve()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        file = (csv_path.parent / row["path"]).resolve()
        row["file"] = str(file)
        row["key"] = os.path.relpath(file, base)
    return rows


def records_from_shared(data_dir: Path = DEFAULT_DATA) -> list[dict[str, str]]:
    """The dev set's videos as rows to score: spoof.csv's video rows plus videos.csv's clips as real ones."""
    rows: list[dict[str, str]] = []
    with (data_dir / "spoof/spoof.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["media"] == "video":
                rows.append(_shared_row(data_dir, r["path"], r["label"], r["attack_type"], r["identity"], r["source"]))
    with (data_dir / "videos/videos.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(_shared_row(data_dir, r["path"], REAL, NO_ATTACK, r["identity"], r["source"]))
    return rows


def _shared_row(data_dir: Path, path: str, label: str, attack: str, subject: str, source: str) -> dict[str, str]:
    file = str((data_dir / path).resolve())
    # The dev clips carry no capture condition: they count as "clean" (well lit, frontal).
    return {"key": path, "file": file, "path": path, "label": label, "attack_type": attack, "subject": subject,
            "condition": "clean", "source": source}  # fmt: skip


def _done_keys(out: Path) -> set[str]:
    if not out.exists():
        return set()
    return {str(r["key"]) for r in read_records([out])}


def score_rows(
    rows: Sequence[dict[str, str]],
    out: Path,
    limit: int | None = None,
    pack: str | None = None,
    key_frames: tuple[float, int] | None = None,
) -> int:
    """Score the rows not yet in `out`, appending one JSON line each (flushed: a killed run resumes).

    ``pack``: the model pack (default: the deployment's); `liveness_eval` adds a second-opinion model whose
    own score every record keeps (`result.passive_by_model`), so `evaluate --models` can compare ensembles.
    ``key_frames``: (seconds between key frames, how many of the best the passive score averages) instead of
    the stage's defaults, to measure a denser sampling (every key frame's score is kept in `frame_scores`)."""
    from models.packs import load_pack
    from pipelines.errors import MediaError
    from pipelines.liveness import LivenessChecker, LivenessConfig

    done = _done_keys(out)
    todo = [r for r in rows if r["key"] not in done][:limit]
    if not todo:
        return 0
    config = LivenessConfig(check_duplicates=False)
    if key_frames is not None:
        every, n = key_frames
        # The cap on key frames grows with the density, so that a long clip is sampled over its whole length.
        cap = max(n, math.ceil(config.max_key_frames * config.detect_every_s / every))
        config = dataclasses.replace(config, detect_every_s=every, passive_frames=n, max_key_frames=cap)
    checker = LivenessChecker(pack=load_pack(pack), config=config)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as fh:
        for row in todo:
            record: dict[str, Any] = {k: v for k, v in row.items() if k != "file"}
            try:
                result = checker.check(Path(row["file"]))
            except MediaError as exc:
                record.update(error=exc.reason.value, passive_score=None, reasons=[])
            else:
                analysis = {k: v for k, v in result.to_dict().items() if k not in HEAVY_KEYS}
                record.update(passive_score=analysis["passive_score"], reasons=analysis["reasons"], result=analysis)
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            print(f"{record['key']}: {record.get('error') or record['passive_score']}", file=sys.stderr)
    return len(todo)


# ------------------------------------------------------------------------------------------------------ evaluate


def record_events(record: dict[str, Any]) -> list[ActionEvent]:
    events = (record.get("result") or {}).get("events") or []
    return [ActionEvent(str(e["name"]), float(e["t"]), float(e["amplitude"])) for e in events]


# Attacks with a live person behind them: a cut photo worn over a face blinks through its eye holes and turns
# and nods with the head that carries it.
WORN_ATTACKS = frozenset({"cut_photo"})


def performs_challenge(record: dict[str, Any]) -> bool:
    """An attack that can do what the challenge asks, so only the passive score and the motion cue stand against
    it: a replayed video (prepared to show the actions; Replay-Attack names its video replays `..._video_...`,
    the generator `replay_phone_video` / `replay_monitor_video`) or a worn cut photo. Prints and photo replays
    are static: they pass a challenge only by chance."""
    attack = str(record.get("attack_type", ""))
    return "_video_" in str(record.get("path", "")) or attack.endswith("_video") or attack in WORN_ATTACKS


def review_band(presentations: Sequence[Presentation], choice: ThresholdChoice) -> dict[str, Any]:
    """Genuine people between the review floor and the threshold: with the challenge performed and live motion the
    stage sends them to staff review, not to rejection (in-sample, at the deployed operating point)."""
    groups: dict[str, list[int]] = {}
    for p in presentations:
        if p.label != REAL or p.hard_reject or retake_at(p, choice.threshold):
            continue
        counts = groups.setdefault(p.condition, [0, 0])
        counts[0] += int(choice.review_floor <= p.score < choice.threshold)
        counts[1] += 1
    total = [sum(c[0] for c in groups.values()), sum(c[1] for c in groups.values())]
    return {
        "note": "share of acquired genuine presentations in [review_floor, threshold): staff review, not rejection",
        **{g: {"events": e, "n": n, "value": round(e / n, 6) if n else None} for g, (e, n) in sorted(groups.items())},
        ALL: {"events": total[0], "n": total[1], "value": round(total[0] / total[1], 6) if total[1] else None},
    }


# The decision's review margin above the stage's threshold until 2026-12-05 (now DecisionConfig's default, 0):
# what it would cost and buy is reported, so that re-adding one is a measured choice.
STUDIED_MARGIN = 0.05


def decision_margin(presentations: Sequence[Presentation], choice: ThresholdChoice, margin: float) -> dict[str, Any]:
    """What the decision's margin does at the deployed point (in-sample): a presentation that passes the stage
    (score at or above the threshold, no hard finding) but scores below threshold + margin goes to staff review,
    not to an automatic accept (`pipelines/decision/rules.py`, `passive_review_margin`). Per capture condition for
    genuine people (the cost: reviews instead of accepts), per attack type for attacks (the gain: reviews instead
    of accepts)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for p in presentations:
        if not classify(p, choice.threshold) or retake_at(p, choice.threshold):
            continue
        key = ("genuine", p.condition) if p.label == REAL else ("attack", p.attack_type)
        counts = groups.setdefault(key, [0, 0])
        counts[0] += int(p.score < choice.threshold + margin)
        counts[1] += 1

    def side(name: str) -> dict[str, Any]:
        rows = {g: c for (s, g), c in sorted(groups.items()) if s == name}
        e, n = sum(c[0] for c in rows.values()), sum(c[1] for c in rows.values())
        rows[ALL] = [e, n]
        return {g: {"events": a, "n": b, "value": round(a / b, 6) if b else None} for g, (a, b) in rows.items()}

    return {
        "note": (
            "of the presentations that pass the stage, the share below threshold + margin: they would be reviewed, "
            "not accepted, with that margin in the decision"
        ),
        "margin": margin,
        "deployed_margin": DecisionConfig().passive_review_margin,
        "threshold": round(choice.threshold, 6),
        "genuine": side("genuine"),
        "attack": side("attack"),
    }


def model_vectors(records: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, list[float]]:
    """Each record's scores of the models `names`, in order, by key (records without a scored face left out)."""
    out: dict[str, list[float]] = {}
    for r in records:
        by_model = (r.get("result") or {}).get("passive_by_model") or {}
        if by_model:
            out[str(r["key"])] = [float(by_model[n]) for n in names]
    return out


def evaluate_records(
    records: Sequence[dict[str, Any]], protocol: Protocol, fusion: Sequence[str] | None = None
) -> dict[str, Any]:
    """Both modes: under the service's random challenge (production, deployed) and without one (tools).

    `fusion`: the models whose scores a logistic fusion combines, fitted inside the protocol's folds
    (`evaluation/learned.py`); None: the records' passive score (the models' mean)."""
    plain = [presentation_from_record(r) for r in records]
    challenged = [
        under_challenge(p, record_events(r), protocol.seed, prepared=performs_challenge(r))
        for p, r in zip(plain, records, strict=True)
    ]
    fitted: LogisticFusion | None = None
    if fusion:
        vectors = model_vectors(records, fusion)
        production, fitted = evaluate_fused(challenged, vectors, fusion, protocol)
        without, _ = evaluate_fused(plain, vectors, fusion, protocol)
        challenged, plain = rescored(challenged, vectors, fitted), rescored(plain, vectors, fitted)
    else:
        production, without = evaluate(challenged, protocol), evaluate(plain, protocol)
    dep = production.deployment
    at_deployed = measure([with_motion_rule(p, dep.motion_min_ratio or 0.0) for p in plain], dep.threshold)
    return {
        "deployed_mode": "challenge",
        **({} if fitted is None else {"fusion": fitted.to_dict()}),
        "review_band": review_band(challenged, dep),
        "decision_margin": decision_margin(challenged, dep, STUDIED_MARGIN),
        "modes": {"challenge": report_to_dict(production), "no_challenge": report_to_dict(without)},
        "no_challenge_at_deployed": {
            "note": "no challenge, at the deployed (challenge-mode) operating point: in-sample",
            **rates_to_dict(at_deployed),
        },
        "challenge_mode": (
            "each static attack gets one challenge drawn as the service draws it (seeded by its key) and passes it "
            "only when its own detected actions satisfy it in order; replayed videos (can be prepared), worn cut "
            "photos (live eyes and head behind them) and genuine people are taken to perform it"
        ),
        "record_flags": (
            "hard: any code but SPOOF_SUSPECTED, SPOOF_RIGID_MOTION and CAPTURE_*; retake: a media error or no "
            "face in the dark; capture_poor: the capture block's retake codes; motion_ratio: the ratio where judged"
        ),
    }


AGGREGATION = "mean over models of P(real), mean over the video's best (frontal, sharp, lit) key frames"
FUSED_AGGREGATION = (
    "each model's mean P(real) over the video's best (frontal, sharp, lit) key frames, combined by the logistic "
    "fusion fitted on the records (weights in `fusion`)"
)
LOGISTIC = "logistic:"


def calibration_entry(report: dict[str, Any], records: Sequence[dict[str, Any]], data: str) -> dict[str, Any]:
    """The deployment choice as a `calibration.json` entry for the ensemble the records were scored with."""
    models = next((r["result"]["models"] for r in records if (r.get("result") or {}).get("models")), None)
    if not models:
        raise ValueError("the records carry no model versions: score them again with this version")
    ensemble = "+".join(v for k, v in models.items() if k.startswith("antispoof:"))
    deployed = report["modes"][report["deployed_mode"]]
    choice, cv = deployed["deployment"]["choice"], deployed["cross_validated"]
    return {
        "ensemble": ensemble,
        "threshold": choice["threshold"],
        "review_floor": choice["review_floor"],
        "motion_min_ratio": choice["motion_min_ratio"],
        "rule": choice["rule"],
        "targets": {
            "apcer": choice["target_apcer"],
            "bpcer": choice["target_bpcer"],
            "bpcer_met": choice["met_target"],
        },
        "aggregation": AGGREGATION if "fusion" not in report else FUSED_AGGREGATION,
        **({"fusion": report["fusion"]} if "fusion" in report else {}),
        "mode": report["deployed_mode"],
        "cross_validated": {"acer": cv.get("acer"), "apcer": cv["apcer"], "bpcer": cv["bpcer"]},
        "data": data,
        "calibrated_on": dt.date.today().isoformat(),
    }


# Enough of a record for `evaluate` (record_flags, presentation_from_record, record_events, calibration_entry,
# with_models): what `compact` keeps when scored records are committed.
RESULT_KEYS = ("verdict", "driver", "reasons", "passive_score", "passive_by_model", "capture", "motion", "models",
               "events")  # fmt: skip


def compact_record(record: dict[str, Any]) -> dict[str, Any]:
    result = record.get("result")
    if not result:
        return record
    return {**record, "result": {k: result[k] for k in RESULT_KEYS if k in result}}


def compare_models(
    records: Sequence[dict[str, Any]], model_sets: Sequence[Sequence[str]], protocol: Protocol
) -> dict[str, Any]:
    """The same presentations evaluated with each set of anti-spoofing models (their mean is the score): the
    deployed mode's operating point and out-of-fold APCER per attack type, BPCER per condition and ACER."""
    out: dict[str, Any] = {"protocol": protocol.__dict__ | {"mode": "challenge"}, "ensembles": {}}
    for spec in model_sets:
        fused = bool(spec) and spec[0].startswith(LOGISTIC)
        names = [spec[0].removeprefix(LOGISTIC), *spec[1:]] if fused else list(spec)
        report = evaluate_records([with_models(r, names) for r in records], protocol, names if fused else None)
        deployed = report["modes"][report["deployed_mode"]]
        cv = deployed["cross_validated"]
        out["ensembles"][("logistic(" + ",".join(names) + ")") if fused else "+".join(names)] = {
            "threshold": deployed["deployment"]["choice"]["threshold"],
            "review_floor": deployed["deployment"]["choice"]["review_floor"],
            "apcer": cv["apcer"],
            "bpcer": cv["bpcer"],
            "retake_rate": cv["retake_rate"],
            "acer": cv["acer"],
            "review_band": report["review_band"],
            **({"fusion": report["fusion"]} if fused else {}),
        }
    return out


def comparison_table(comparison: dict[str, Any]) -> str:
    """Markdown: one row per figure and group, one column per ensemble (out-of-fold, bootstrap 95 % CI)."""
    names = list(comparison["ensembles"])
    first = comparison["ensembles"][names[0]]
    lines = ["| figure | group | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for metric in (APCER, BPCER):
        for group in first[metric]:
            if metric == APCER and group == ALL:
                continue
            cells = [_rate_cell(comparison["ensembles"][n][metric].get(group, {})) for n in names]
            lines.append(f"| {metric} | {group} | " + " | ".join(cells) + " |")
    thresholds = " | ".join(f"{comparison['ensembles'][n]['threshold']:.4f}" for n in names)
    lines.append(f"| deployed threshold | | {thresholds} |")
    return "\n".join(lines) + "\n"


def _rate_cell(r: dict[str, Any]) -> str:
    if r.get("value") is None:
        return "–"
    lo, hi = r.get("bootstrap_ci", (r["value"], r["value"]))
    return f"{100 * r['value']:.1f} % ({r['events']}/{r['n']}) [{100 * lo:.1f}, {100 * hi:.1f}]"


def _write_report(
    report: dict[str, Any], out: Path, markdown: Path | None, table: Callable[[dict[str, Any]], str] = markdown_table
) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(table(report), encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------- CLI


def _protocol(args: argparse.Namespace) -> Protocol:
    return Protocol(
        folds=args.folds, seed=args.seed, target_apcer=args.target_apcer, target_bpcer=args.target_bpcer,
        motion_min_ratio=None if args.choose_motion_ratio else DEFAULT_MIN_RATIO,
        target_motion_bpcer=args.target_motion_bpcer, n_boot=args.n_boot,
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    score = sub.add_parser("score", help="score presentation CSVs into a JSONL of records")
    score.add_argument("--index", type=Path, action="append", required=True)
    score.add_argument("--root", type=Path, help="keys are paths relative to this folder (default: cwd)")
    score.add_argument("--out", type=Path, required=True)
    score.add_argument("--limit", type=int)
    score.add_argument("--pack", help="model pack (default: PENSION_CERT_MODEL_PACK or default)")
    score.add_argument("--detect-every", type=float, help="seconds between key frames (default: the stage's 1.5)")
    score.add_argument(
        "--passive-frames", type=int, default=5, help="with --detect-every: how many best key frames are averaged"
    )
    ev = sub.add_parser("evaluate", help="evaluate scored records")
    ev.add_argument("--records", type=Path, action="append", required=True)
    ev.add_argument(
        "--models",
        help="comma-separated anti-spoofing models whose mean is the score (records scored with --pack "
        "liveness_eval keep each model's score); default: the ensemble the records were scored with",
    )
    compact = sub.add_parser("compact", help="keep only what `evaluate` reads, gzip-compressed (to commit records)")
    compact.add_argument("--records", type=Path, action="append", required=True)
    compact.add_argument("--out", type=Path, required=True)
    cmp = sub.add_parser("compare", help="evaluate the same records with several anti-spoofing ensembles")
    cmp.add_argument("--records", type=Path, action="append", required=True)
    cmp.add_argument(
        "--models",
        action="append",
        required=True,
        help="comma-separated models, repeat per ensemble; prefix `logistic:` to fit their fusion instead of the mean",
    )
    shared = sub.add_parser("shared", help="score and evaluate the committed dev set")
    shared.add_argument("--data", type=Path, default=DEFAULT_DATA)
    shared.add_argument("--records", type=Path, help="keep the scored records here (default: a temporary file)")
    for p in (ev, shared, cmp):
        p.add_argument("--folds", type=int, default=5)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--target-apcer", type=float, default=0.01)
        p.add_argument("--target-bpcer", type=float, default=0.02)
        p.add_argument("--target-motion-bpcer", type=float, default=0.01)
        p.add_argument(
            "--choose-motion-ratio", action="store_true", help="choose the motion ratio on the folds (default: 3)"
        )
        p.add_argument("--n-boot", type=int, default=1000)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--markdown", type=Path)
    ev.add_argument(
        "--fusion", action="store_true", help="fit a logistic fusion of the --models inside the folds (not their mean)"
    )
    ev.add_argument("--write-calibration", type=Path, help="merge the deployment choice into this calibration file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "score":
        rows = [row for index in args.index for row in read_index(index, args.root)]
        key_frames = None if args.detect_every is None else (args.detect_every, args.passive_frames)
        n = score_rows(rows, args.out, args.limit, args.pack, key_frames)
        print(f"scored {n} new presentations", file=sys.stderr)
        return 0
    if args.command == "compact":
        with gzip.open(args.out, "wt", encoding="utf-8") as fh:
            for record in read_records(args.records):
                fh.write(json.dumps(compact_record(record), ensure_ascii=False) + "\n")
        return 0
    if args.command == "compare":
        sets = [m.split(",") for m in args.models]
        comparison = compare_models(read_records(args.records), sets, _protocol(args))
        _write_report(comparison, args.out, args.markdown, comparison_table)
        return 0
    if args.command == "evaluate":
        scored = read_records(args.records)
        names = args.models.split(",") if args.models else None
        if names:
            scored = [with_models(r, names) for r in scored]
        elif args.fusion:
            raise SystemExit("--fusion needs --models: the models it combines")
        report = evaluate_records(scored, _protocol(args), names if args.fusion else None)
        _write_report(report, args.out, args.markdown)
        if args.write_calibration is not None:
            names = ", ".join(p.name for p in args.records)
            version = write_entry(calibration_entry(report, scored, names), args.write_calibration)
            print(f"calibration {args.write_calibration} is now version {version}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        records = args.records or Path(tmp) / "records.jsonl"
        score_rows(records_from_shared(args.data), records)
        _write_report(evaluate_records(read_records([records]), _protocol(args)), args.out, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
