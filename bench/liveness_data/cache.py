"""The cache: ``fetch`` verifies and assembles the selected presentations, keeps a state file and the index CSV."""

from __future__ import annotations

import csv
import logging
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.liveness_data.assembly import ASSEMBLY_VERSION, assemble_job
from bench.liveness_data.manifest import MANIFEST, Presentation, read_manifest, select
from bench.liveness_data.snapshots import GitSnapshot, IntegrityError, read_verified, sha256_hex, snapshot_dir

log = logging.getLogger("bench.liveness_data")

STATE_NAME = "fetch_state.csv"
INDEX_NAME = "presentations.csv"
STATE_COLUMNS = ("id", "source_sha256", "assembly", "video_sha256", "n_frames", "fps")
INDEX_COLUMNS = (
    "path",
    "label",
    "attack_type",
    "subject",
    "condition",
    "source",
    "light",
    "support",
    "split",
    "n_frames",
    "fps",
)


def default_cache() -> Path:
    env = os.environ.get("PENSION_CERT_LIVENESS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "pension-cert" / "liveness"


def _read_state(cache: Path) -> dict[str, dict[str, str]]:
    path = cache / STATE_NAME
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def _write_state(cache: Path, state: dict[str, dict[str, str]]) -> None:
    tmp = cache / (STATE_NAME + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=STATE_COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for key in sorted(state):
            w.writerow(state[key])
    tmp.replace(cache / STATE_NAME)


def _is_current(cache: Path, p: Presentation, st: dict[str, str] | None) -> bool:
    if st is None or st.get("source_sha256") != p.sha256 or st.get("assembly") != ASSEMBLY_VERSION.get(p.source, "1"):
        return False
    video = cache / p.out_path
    return video.is_file() and sha256_hex(video.read_bytes()) == st.get("video_sha256")


def write_index(cache: Path, rows: Sequence[Presentation], state: dict[str, dict[str, str]]) -> Path:
    path = cache / INDEX_NAME
    tmp = cache / (INDEX_NAME + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(INDEX_COLUMNS)
        for p in rows:
            st = state[p.id]
            w.writerow(
                [
                    p.out_path,
                    p.label,
                    p.attack_type,
                    p.subject,
                    "clean",
                    f"{p.repo}@{p.commit}",
                    p.light,
                    p.support,
                    p.split,
                    st["n_frames"],
                    st["fps"],
                ]
            )
    tmp.replace(path)
    return path


def _state_row(p: Presentation, result: tuple[int, int, str]) -> dict[str, str]:
    """The state-file row of a video just built from ``p``: (frames written, fps, video sha256)."""
    n, fps, vsha = result
    return {
        "id": p.id,
        "source_sha256": p.sha256,
        "assembly": ASSEMBLY_VERSION.get(p.source, "1"),
        "video_sha256": vsha,
        "n_frames": str(n),
        "fps": str(fps),
    }


def _open_pinned(mirror_root: Path, repo: str, commit: str) -> GitSnapshot:
    """The snapshot of ``repo``, refused (IntegrityError) unless it holds the pinned ``commit``."""
    snap = GitSnapshot(snapshot_dir(mirror_root, repo))
    if not snap.has_commit(commit):
        snap.close()
        raise IntegrityError(
            f"commit {commit} of {repo} is not in {snap.git_dir}: fetch the snapshot "
            f"again (github:{repo}) or pin the commit it now has"
        )
    return snap


def _keep_sources(cache: Path, repo: str, blobs: dict[str, bytes]) -> None:
    for path, blob in blobs.items():
        target = cache / "sources" / repo.replace("/", "+") / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)


def _build(
    mirror_root: Path,
    cache: Path,
    todo: Sequence[Presentation],
    state: dict[str, dict[str, str]],
    jobs: int,
    keep_sources: bool,
    t0: float,
) -> int:
    """Verify and assemble ``todo`` in worker processes, recording each video in ``state``; returns the count.

    The state file is saved every 100 videos (an interrupted run keeps its work); ``t0`` times the progress log.
    """
    by_repo: dict[tuple[str, str], list[Presentation]] = defaultdict(list)
    for p in todo:
        by_repo[(p.repo, p.commit)].append(p)
    built = 0
    pending: list[tuple[Presentation, Future[tuple[int, int, str]]]] = []

    def drain(limit: int) -> None:
        nonlocal built
        while len(pending) > limit:
            p, fut = pending.pop(0)
            state[p.id] = _state_row(p, fut.result())
            built += 1
            if built % 100 == 0:
                log.info("built %d/%d (%.0f s)", built, len(todo), time.monotonic() - t0)
                _write_state(cache, state)

    # "spawn": forked workers would inherit the pipe to ``git cat-file --batch`` and keep it from ever ending.
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for (repo, commit), items in by_repo.items():
            with _open_pinned(mirror_root, repo, commit) as snap:
                for p in items:
                    blobs = read_verified(snap, p)
                    if keep_sources:
                        _keep_sources(cache, repo, blobs)
                    job = pool.submit(assemble_job, p.source, p.tokens(), list(blobs.values()), str(cache / p.out_path))
                    pending.append((p, job))
                    drain(4 * max(1, jobs))
        drain(0)
    return built


def fetch(
    mirror_root: Path,
    cache: Path,
    manifest: Path = MANIFEST,
    limit_per_source: int | None = None,
    jobs: int = 2,
    keep_sources: bool = False,
) -> dict[str, Any]:
    """Verify and assemble every selected presentation into ``cache``; idempotent. Returns a summary."""
    rows = select(read_manifest(manifest), limit_per_source)
    cache.mkdir(parents=True, exist_ok=True)
    state = _read_state(cache)
    t0 = time.monotonic()
    todo = [p for p in rows if not _is_current(cache, p, state.get(p.id))]
    log.info("%d presentations selected, %d to build", len(rows), len(todo))
    built = _build(mirror_root, cache, todo, state, jobs, keep_sources, t0)
    _write_state(cache, state)
    index = write_index(cache, rows, state)
    return {
        "selected": len(rows),
        "built": built,
        "skipped": len(rows) - len(todo),
        "seconds": round(time.monotonic() - t0, 1),
        "index": str(index),
    }
