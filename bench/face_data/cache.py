"""The cache: ``fetch`` verifies every pinned file against its sha256 and writes one image per face.

Layout under the cache root: ``<source>/<repository path>`` for one-face images, ``<source>/crops/<id>.png`` for
faces cut from a family photo, ``index.csv`` (one row per face, the manifest's labels) and ``relations.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile

from bench.face_data.manifest import MANIFEST, FaceRow, read_manifest
from bench.liveness_data.snapshots import GitSnapshot, IntegrityError, sha256_hex, snapshot_dir

log = logging.getLogger("bench.face_data")

INDEX_NAME = "index.csv"
RELATIONS_NAME = "relations.csv"
LINKS_NAME = "links.csv"
INDEX_COLUMNS = ("path", "id", "source", "subject", "family", "role", "age", "gender", "ethnicity")


def default_cache() -> Path:
    env = os.environ.get("PENSION_CERT_FACES_DIR")
    return Path(env) if env else Path.home() / ".cache" / "pension-cert" / "faces"


def crop_region(data: bytes, region: str) -> np.ndarray:
    """The square face region of a group photo, padded with black where it leaves the photo."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        # One TSKinFace photo ends early; OpenCV refuses it, Pillow decodes the part that is there. The switch is
        # process-wide, so it is put back: nothing else (uploads above all) may accept truncated images.
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            with Image.open(io.BytesIO(data)) as im:
                image = cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before
    x0, y0, x1, y1 = (int(v) for v in region.split())
    h, w = image.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def _write(cache: Path, row: FaceRow, data: bytes) -> None:
    target = cache / row.out_path
    target.parent.mkdir(parents=True, exist_ok=True)
    if row.region:
        cv2.imwrite(str(target), crop_region(data, row.region))
    else:
        target.write_bytes(data)


def fetch(mirror_root: Path, cache: Path, manifest: Path = MANIFEST) -> dict[str, int]:
    """Verify and write every face of the manifest; returns faces written per source."""
    rows = read_manifest(manifest)
    by_snapshot: dict[tuple[str, str], list[FaceRow]] = defaultdict(list)
    for r in rows:
        by_snapshot[(r.repo, r.commit)].append(r)
    cache.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = defaultdict(int)
    for (repo, commit), mine in sorted(by_snapshot.items()):
        with GitSnapshot(snapshot_dir(mirror_root, repo)) as snap:
            if not snap.has_commit(commit):
                raise IntegrityError(f"snapshot of {repo} lacks commit {commit[:12]}: `fetch github:{repo}` again")
            blobs: dict[str, bytes] = {}
            for r in mine:
                if r.path not in blobs:
                    blobs[r.path] = snap.read(commit, r.path)
                    if sha256_hex(blobs[r.path]) != r.sha256:
                        raise IntegrityError(f"sha256 mismatch for {repo}@{commit[:12]}:{r.path}; refusing it")
                _write(cache, r, blobs[r.path])
                written[r.source] += 1
        log.info("%s: %d faces", repo, len(mine))
    _write_index(cache, rows)
    for name in (RELATIONS_NAME, LINKS_NAME):
        shutil.copyfile(manifest.with_name(name), cache / name)
    return dict(written)


def _write_index(cache: Path, rows: list[FaceRow]) -> None:
    tmp = cache / (INDEX_NAME + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(INDEX_COLUMNS)
        for r in rows:
            w.writerow([r.out_path, r.id, r.source, r.subject, r.family, r.role, r.age, r.gender, r.ethnicity])
    tmp.replace(cache / INDEX_NAME)
