"""Batch generation: derived clips for every real, clean row of a presentations CSV, and their CSV rows."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.liveness_conditions.clip import CSV_COLUMNS, GENERATED_CSV, MIN_SECONDS, Clip, read_video, write
from bench.liveness_conditions.faces import NoFaceError, detect_face_box
from bench.liveness_conditions.registry import ATTACKS, CONDITIONS, apply, condition_rng

log = logging.getLogger("bench.liveness_conditions")


def _derived_row(row: dict[str, str], clip: Clip, rel: str, seed: int) -> dict[str, str]:
    """The CSV row of a derived clip: the source's subject and split (folds stay subject-disjoint)."""
    out = {c: row.get(c, "") for c in CSV_COLUMNS}
    light = {"low_light": "low", "backlight": "backlit"}.get(clip.condition)
    out.update(
        path=rel,
        label=clip.label,
        condition=clip.condition,
        n_frames=str(len(clip.frames)),
        fps=f"{clip.fps:g}",
        source=f"generated:{clip.condition}:seed{seed}:{row['path']}",
        attack_type=clip.attack_type if clip.label == "spoof" else row.get("attack_type", "none"),
        light=light or row.get("light", ""),
    )
    return out


def _merge_csv(path: Path, new_rows: list[dict[str, str]]) -> None:
    """Append rows, replacing earlier rows for the same file (a re-run with the same seed rewrites them)."""
    rows: list[dict[str, str]] = []
    if path.exists():
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    replaced = {r["path"] for r in new_rows}
    rows = [r for r in rows if r.get("path") not in replaced] + new_rows
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _chosen(names: Sequence[str], per_source: int | None, rng: np.random.Generator) -> list[str]:
    if per_source is None or per_source >= len(names):
        return list(names)
    picked = rng.choice(len(names), size=per_source, replace=False)
    return [names[i] for i in sorted(picked)]


def _generate_source(
    row: dict[str, str], root: Path, out_dir: Path, seed: int, names: list[str]
) -> list[dict[str, str]]:
    frames, fps = read_video(root / row["path"])
    if len(frames) < MIN_SECONDS * fps:
        log.warning("skipping %s: shorter than %.1f s", row["path"], MIN_SECONDS)
        return []
    box = detect_face_box(frames)
    stem = Path(row["path"]).with_suffix("").as_posix().replace("/", "__")
    rows = []
    for name in names:
        try:
            clip = apply(name, frames, fps, seed, face_box=box, key=row["path"])
        except NoFaceError as exc:
            log.warning("skipping %s for %s: %s", name, row["path"], exc)
            continue
        rel = f"{name}/{stem}.seed{seed}.{clip.extension}"
        write(clip, out_dir / rel)
        rows.append(_derived_row(row, clip, rel, seed))
    return rows


def generate(index_csv: Path, out_dir: Path, seed: int, conditions: Sequence[str], per_source: int | None) -> Path:
    """Derive clips from every real, clean row of a presentations CSV; rows go to ``out_dir/GENERATED_CSV``.

    Paths in the index are relative to its folder; the generated paths are relative to ``out_dir``. With
    ``per_source`` each source gets that many conditions, drawn from the seed and the source path.
    """
    unknown = [c for c in conditions if c not in CONDITIONS and c not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown conditions: {unknown}")
    with index_csv.open(newline="") as f:
        sources = [r for r in csv.DictReader(f) if r.get("label") == "real" and r.get("condition") == "clean"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / GENERATED_CSV
    for row in sources:
        names = _chosen(list(conditions), per_source, condition_rng("choose", seed, row["path"]))
        rows = _generate_source(row, index_csv.parent, out_dir, seed, names)
        _merge_csv(target, rows)  # after every source: an interrupted run keeps what it wrote
        log.info("%s: %d clips", row["path"], len(rows))
    return target
