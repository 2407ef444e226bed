"""Larger liveness development set: pinned public frames/clips assembled into MP4 presentations in a cache.

    python -m bench.liveness_data fetch [--mirror-root /work/.mirror] [--cache DIR] [--limit-per-source N]
    python -m bench.liveness_data build-manifest [--mirror-root /work/.mirror]   # maintainers only

Sources are git repository snapshots (bare git directories ``<mirror-root>/<owner>+<name>/repo``); every file
read from them is pinned in ``bench/liveness_data/manifest.csv`` by repository, commit, path and sha256. To keep
the manifest small, one row stands for one *presentation* (one video made from N source files): the files are
``dir/pattern.format(token)`` for each token of ``frames``, and ``sha256`` is the sha256 of the sorted lines
``"<path> <sha256 of the file>\\n"`` (see :func:`combined_sha256`). A mismatch refuses the presentation.

The cache (``$PENSION_CERT_LIVENESS_DIR`` or ``~/.cache/pension-cert/liveness``) receives one H.264 MP4 per
presentation and ``presentations.csv`` (paths relative to the cache). See ``docs/liveness_data.md``.
No media are committed; upstream terms (e.g. the Idiap EULA of Replay-Attack) allow measuring only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np

log = logging.getLogger("bench.liveness_data")

MANIFEST = Path(__file__).resolve().parent / "liveness_data" / "manifest.csv"
STATE_NAME = "fetch_state.csv"
INDEX_NAME = "presentations.csv"
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
# Bump a source's entry when its assembly (timeline, scaling, encoder settings) changes: its cached videos are
# then rebuilt, the others kept.
ASSEMBLY_VERSION = {"replay_attack": "1", "nuaa": "2", "grid": "1"}
CRF = "20"
PRESET = "superfast"

# Repositories and file names that must never be taken (media used to evaluate the project, or their copies).
FORBIDDEN_REPOS = frozenset(
    r.lower()
    for r in (
        "KwaiVGI/LivePortrait",
        "OpenTalker/SadTalker",
        "ZubairCracksCode/anit-spoofing",
        "tranvanluyt2203/face_anti_spoofing",
        "Manikantha-M/Face-Liveness-detection-using-Deeplearning-and-OpenCV",
        "minivision-ai/Silent-Face-Anti-Spoofing",
        "serengil/deepface",
        "umass-vis-lfw/umass-vis-lfw.github.io",
    )
)
FORBIDDEN_NAMES = (
    re.compile(r"(^|/)(real\.mov|fake\.mp4)$", re.IGNORECASE),  # PyImageSearch clips
    re.compile(r"(^|/)[A-Z][a-z]+(_[A-Z][A-Za-z]+)+_\d{4}\.jpe?g$"),  # LFW-named Name_Surname_000N.jpg
    re.compile(r"(^|/)lfw[^/]*/", re.IGNORECASE),
)

# ---- source-specific constants -------------------------------------------------------------------------------
REPLAY_ATTACK = "sejong-sas/replay-attack"
NUAA = "imironica/liveness"
GRID = "rizkiarm/LipNet"
# Replay-Attack: 20 frames per video, evenly spaced over the whole original video (25 fps, 9.2-15 s), i.e.
# 0.48-0.79 s apart (src/prepare/build_frame_index.py). Each frame is held 3 output frames at 12 fps: 5.0 s.
RA_FPS, RA_HOLD = 12, 3
# NUAA: picNo counts frames of the 20 fps webcam capture, but real groups are often consecutive frames while
# imposter groups are sparse (every 4th-18th frame). Following the picNo timeline would make every spoof long and
# most reals short (duration would give the label away), so every stored frame is held 2 output frames at 20 fps
# (a new image every 0.1 s) whatever its picNo gap: duration depends only on the number of frames.
NUAA_FPS, NUAA_HOLD = 20, 2
NUAA_CHUNK = 45
# Sources whose longest side is below this are upscaled 2x (bicubic): Replay-Attack 320x240, GRID 360x288.
UPSCALE_BELOW = 480


class IntegrityError(RuntimeError):
    """A source file is missing from the snapshot or its content does not match the pinned sha256."""


@dataclass(frozen=True)
class Presentation:
    """One manifest row: a presentation assembled from ``files()`` of ``repo@commit``."""

    id: str
    source: str  # replay_attack | nuaa | grid
    repo: str
    commit: str
    label: str  # real | spoof
    attack_type: str  # none | print | replay_phone | replay_tablet | replay_monitor
    medium: str  # live | print | photo | video (what is shown to the camera)
    support: str  # none | fixed | hand | unknown
    light: str  # controlled | adverse | unknown
    subject: str
    split: str
    dir: str
    pattern: str
    frames: str  # space-separated tokens for pattern.format(token)
    sha256: str
    note: str = ""

    def tokens(self) -> list[str]:
        return self.frames.split()

    def files(self) -> list[str]:
        return [f"{self.dir}/{self.pattern.format(t)}" if self.dir else self.pattern.format(t) for t in self.tokens()]

    @property
    def out_path(self) -> str:
        return f"{self.source}/{self.id}.mp4"


MANIFEST_COLUMNS = tuple(f.name for f in fields(Presentation))


# ---- manifest ----------------------------------------------------------------------------------------------
def read_manifest(path: Path | str | io.TextIOBase) -> list[Presentation]:
    """Parse a manifest CSV (a path or an open text stream); raises ``ValueError`` on a malformed row."""
    if isinstance(path, io.TextIOBase):
        return _parse_manifest(path.read())
    return _parse_manifest(Path(path).read_text(encoding="utf-8"))


def _parse_manifest(text: str) -> list[Presentation]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in MANIFEST_COLUMNS if c != "note" and c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"manifest is missing columns: {', '.join(missing)}")
    out: list[Presentation] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        values = {c: (row.get(c) or "").strip() for c in MANIFEST_COLUMNS}
        p = Presentation(**values)
        if not re.fullmatch(r"[0-9a-f]{64}", p.sha256):
            raise ValueError(f"manifest line {line}: sha256 {p.sha256!r} is not 64 hex digits")
        if not re.fullmatch(r"[0-9a-f]{40}", p.commit):
            raise ValueError(f"manifest line {line}: commit {p.commit!r} is not a full 40-hex commit")
        if p.label not in ("real", "spoof") or (p.label == "real") != (p.attack_type == "none"):
            raise ValueError(f"manifest line {line}: label {p.label!r} / attack_type {p.attack_type!r} disagree")
        if not p.tokens():
            raise ValueError(f"manifest line {line}: no frames")
        if p.id in seen:
            raise ValueError(f"manifest line {line}: duplicate id {p.id!r}")
        seen.add(p.id)
        check_allowed(p.repo, p.files())
        out.append(p)
    return out


def write_manifest(path: Path, rows: Sequence[Presentation]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))


def check_allowed(repo: str, paths: Iterable[str]) -> None:
    if repo.lower() in FORBIDDEN_REPOS:
        raise ValueError(f"repository {repo} is on the never-take list")
    for p in paths:
        if any(rx.search(p) for rx in FORBIDDEN_NAMES):
            raise ValueError(f"{repo}:{p} matches a never-take file name (PyImageSearch clip or LFW-named)")


# ---- hashing and verified reads from a snapshot --------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def combined_sha256(file_hashes: dict[str, str]) -> str:
    """sha256 over the sorted lines ``"<path> <sha256>\\n"``: one pin for all files of a presentation."""
    text = "".join(f"{p} {h}\n" for p, h in sorted(file_hashes.items()))
    return sha256_hex(text.encode("utf-8"))


def snapshot_dir(mirror_root: Path, repo: str) -> Path:
    """Bare git directory of a snapshot brought by ``fetch github:owner/name``."""
    return mirror_root / repo.replace("/", "+") / "repo"


class GitSnapshot:
    """Reads blobs ``commit:path`` from a bare git directory through one ``git cat-file --batch`` process."""

    def __init__(self, git_dir: Path) -> None:
        if not git_dir.is_dir():
            raise IntegrityError(f"snapshot {git_dir} does not exist: bring it with `fetch github:OWNER/NAME` first")
        self.git_dir = git_dir
        self._proc = subprocess.Popen(
            ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def has_commit(self, commit: str) -> bool:
        res = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", "cat-file", "-t", commit], capture_output=True, text=True, check=False
        )
        return res.returncode == 0 and res.stdout.strip() == "commit"

    def read(self, commit: str, path: str) -> bytes:
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{commit}:{path}\n".encode())
        stdin.flush()
        header = stdout.readline().decode().split()
        if len(header) != 3 or header[1] != "blob":
            raise IntegrityError(f"{path} is not a file at commit {commit[:12]} of {self.git_dir}")
        size = int(header[2])
        data = stdout.read(size)
        stdout.read(1)  # trailing newline
        return data

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)

    def __enter__(self) -> GitSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_verified(snap: GitSnapshot, p: Presentation) -> dict[str, bytes]:
    """All source files of ``p`` from the snapshot, in manifest order; raises IntegrityError unless they match."""
    check_allowed(p.repo, p.files())
    data = {path: snap.read(p.commit, path) for path in p.files()}
    got = combined_sha256({path: sha256_hex(b) for path, b in data.items()})
    if got != p.sha256:
        raise IntegrityError(
            f"sha256 mismatch for presentation {p.id} ({len(data)} files of {p.repo}@{p.commit[:12]}): "
            f"combined sha256 is {got}, the manifest pins {p.sha256}; refusing to use it"
        )
    return data


def copy_verified(snap: GitSnapshot, p: Presentation, dest: Path) -> list[Path]:
    """Copy the source files of ``p`` under ``dest`` (keeping their repository paths) after verifying them."""
    data = read_verified(snap, p)
    out: list[Path] = []
    for path, blob in data.items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        out.append(target)
    return out


# ---- assembly ------------------------------------------------------------------------------------------------
def decode_image(blob: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise IntegrityError("a source image does not decode")
    return cast(np.ndarray, img)


def decode_video(blob: bytes) -> tuple[list[np.ndarray], float]:
    frames: list[np.ndarray] = []
    with av.open(io.BytesIO(blob), "r") as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
    return frames, rate


def _prepare(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) < UPSCALE_BELOW:
        h, w = 2 * h, 2 * w
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
    if h % 2 or w % 2:
        img = img[: h - h % 2, : w - w % 2]
    return np.ascontiguousarray(img)


def encode_mp4(path: Path, frames: Iterable[np.ndarray], fps: int) -> int:
    """Write BGR frames as H.264 (yuv420p, CRF 20) MP4; returns the number of frames written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    n = 0
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": PRESET, "crf": CRF}
        stream.thread_count = 1
        for img in frames:
            if n == 0:
                stream.width, stream.height = img.shape[1], img.shape[0]
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
            n += 1
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return n


def assemble(source: str, tokens: Sequence[str], blobs: Sequence[bytes], out: Path) -> tuple[int, int]:
    """Build the video of one presentation; returns (frames written, fps)."""
    if source == "grid":
        if len(blobs) != 1:
            raise ValueError("a GRID presentation is exactly one clip")
        src, rate = decode_video(blobs[0])
        fps = round(rate)
        return encode_mp4(out, (_prepare(f) for f in src), fps), fps
    imgs = [_prepare(decode_image(b)) for b in blobs]
    # frame sequences: every stored frame held a fixed number of output frames (see RA_HOLD, NUAA_HOLD)
    hold, fps = (NUAA_HOLD, NUAA_FPS) if source == "nuaa" else (RA_HOLD, RA_FPS)

    def frames() -> Iterator[np.ndarray]:
        for img in imgs:
            for _ in range(hold):
                yield img

    return encode_mp4(out, frames(), fps), fps


def _assemble_job(source: str, tokens: list[str], blobs: list[bytes], out: str) -> tuple[int, int, str]:
    n, fps = assemble(source, tokens, blobs, Path(out))
    return n, fps, sha256_hex(Path(out).read_bytes())


# ---- fetch -------------------------------------------------------------------------------------------------
def default_cache() -> Path:
    env = os.environ.get("PENSION_CERT_LIVENESS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "pension-cert" / "liveness"


def _read_state(cache: Path) -> dict[str, dict[str, str]]:
    path = cache / STATE_NAME
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


STATE_COLUMNS = ("id", "source_sha256", "assembly", "video_sha256", "n_frames", "fps")


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


def _interleave(rows: Sequence[Presentation]) -> list[Presentation]:
    """Round-robin over (label, attack_type, medium, support, light) strata, so a prefix covers them all."""
    strata: dict[tuple[str, ...], list[Presentation]] = defaultdict(list)
    for r in rows:
        strata[(r.label, r.attack_type, r.medium, r.support, r.light)].append(r)
    queues = list(strata.values())
    out: list[Presentation] = []
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def select(rows: Sequence[Presentation], limit_per_source: int | None) -> list[Presentation]:
    """All rows, or at most N per source, balanced over subjects and then over attack strata (round-robin)."""
    if not limit_per_source:
        return list(rows)
    out: list[Presentation] = []
    by_source: dict[str, dict[str, list[Presentation]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_source[r.source][r.subject].append(r)
    for subjects in by_source.values():
        queues = [_interleave(v) for v in subjects.values()]
        taken = 0
        while taken < limit_per_source and any(queues):
            for q in queues:
                if q and taken < limit_per_source:
                    out.append(q.pop(0))
                    taken += 1
    order = {r.id: i for i, r in enumerate(rows)}
    return sorted(out, key=lambda r: order[r.id])


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
    by_repo: dict[tuple[str, str], list[Presentation]] = defaultdict(list)
    for p in todo:
        by_repo[(p.repo, p.commit)].append(p)
    built = 0
    # "spawn": forked workers would inherit the pipe to ``git cat-file --batch`` and keep it from ever ending.
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: list[tuple[Presentation, Future[tuple[int, int, str]]]] = []

        def drain(limit: int) -> None:
            nonlocal built
            while len(pending) > limit:
                p, fut = pending.pop(0)
                n, fps, vsha = fut.result()
                state[p.id] = {
                    "id": p.id,
                    "source_sha256": p.sha256,
                    "assembly": ASSEMBLY_VERSION.get(p.source, "1"),
                    "video_sha256": vsha,
                    "n_frames": str(n),
                    "fps": str(fps),
                }
                built += 1
                if built % 100 == 0:
                    log.info("built %d/%d (%.0f s)", built, len(todo), time.monotonic() - t0)
                    _write_state(cache, state)

        for (repo, commit), items in by_repo.items():
            with GitSnapshot(snapshot_dir(mirror_root, repo)) as snap:
                if not snap.has_commit(commit):
                    raise IntegrityError(
                        f"commit {commit} of {repo} is not in {snap.git_dir}: fetch the snapshot "
                        f"again (github:{repo}) or pin the commit it now has"
                    )
                for p in items:
                    blobs = read_verified(snap, p)
                    if keep_sources:
                        for path, blob in blobs.items():
                            target = cache / "sources" / repo.replace("/", "+") / path
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(blob)
                    out = cache / p.out_path
                    pending.append(
                        (p, pool.submit(_assemble_job, p.source, p.tokens(), list(blobs.values()), str(out)))
                    )
                    drain(4 * max(1, jobs))
        drain(0)
    _write_state(cache, state)
    index = write_index(cache, rows, state)
    return {
        "selected": len(rows),
        "built": built,
        "skipped": len(rows) - len(todo),
        "seconds": round(time.monotonic() - t0, 1),
        "index": str(index),
    }


# ---- manifest building (maintainers; needs the snapshots) ------------------------------------------------------
def _ls_tree(git_dir: Path, commit: str, prefix: str) -> list[str]:
    res = subprocess.run(
        ["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only", commit, prefix],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in res.stdout.splitlines() if line]


def _head(git_dir: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _pin(snap: GitSnapshot, commit: str, paths: Sequence[str]) -> str:
    return combined_sha256({p: sha256_hex(snap.read(commit, p)) for p in paths})


_RA_DIR = re.compile(
    r"(?P<split>train|devel|test)__(?P<label>real|attack)__(?P<support>real|fixed|hand)__"
    r"(?:attack_(?P<device>print|mobile|highdef)_)?(?P<client>client\d{3})_session\d+_"
    r"(?:webcam_authenticate|(?P<shown>highdef|mobile)_(?P<medium>photo|video))_(?P<light>controlled|adverse)"
)
RA_ATTACK = {"print": "print", "mobile": "replay_phone", "highdef": "replay_tablet"}
RA_SHOWN = {
    "print": "printed high-resolution photo",
    "mobile": "shown on an iPhone 3GS screen",
    "highdef": "shown on an iPad screen",
}


def replay_attack_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    frames: dict[str, list[str]] = defaultdict(list)
    for path in _ls_tree(snap.git_dir, commit, "frames/replay_attack"):
        d, name = path.rsplit("/", 1)
        if name.endswith(".jpg"):
            frames[d].append(name)
    rows: list[Presentation] = []
    for d in sorted(frames):
        vid = d.rsplit("/", 1)[1]
        m = _RA_DIR.match(vid)
        if m is None:
            raise ValueError(f"unexpected Replay-Attack folder name {vid}")
        idx = sorted(int(n[len("frame_") : -4]) for n in frames[d])
        real = m["label"] == "real"
        device = m["device"] or ""
        medium = "live" if real else ("print" if device == "print" else m["medium"])
        attack = "none" if real else RA_ATTACK[device]
        tokens = [f"{i:05d}" for i in idx]
        paths = [f"{d}/frame_{t}.jpg" for t in tokens]
        span = (idx[-1] + 1) / 25.0
        rows.append(
            Presentation(
                id=vid,
                source="replay_attack",
                repo=REPLAY_ATTACK,
                commit=commit,
                label="real" if real else "spoof",
                attack_type=attack,
                medium=medium,
                support="none" if real else m["support"],
                light=m["light"],
                subject=f"replay_attack:{m['client']}",
                split=m["split"],
                dir=d,
                pattern="frame_{}.jpg",
                frames=" ".join(tokens),
                sha256=_pin(snap, commit, paths),
                note=f"original ~{span:.1f} s at 25 fps" + ("" if real else f"; {RA_SHOWN[device]}"),
            )
        )
    return rows


_NUAA_NAME = re.compile(r"(?P<sid>\d{4})_(?P<glasses>\d{2})_(?P<pos>\d{2})_(?P<session>\d{2})_(?P<pic>\d+)\.jpg")
NUAA_POS = {
    "00": "",
    "01": "up-down rotate",
    "02": "up-down twist",
    "03": "left-right rotate",
    "04": "left-right twist",
    "05": "window closed, lights on",
    "06": "pos 06 (undocumented)",
    "07": "window open, lights on",
    "08": "window open, lights off / still",
}


def _nuaa_split(snap: GitSnapshot, commit: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, folder in (("client", "ClientRaw"), ("imposter", "ImposterRaw")):
        for split in ("train", "test"):
            text = snap.read(commit, f"db/{kind}_{split}_raw.txt").decode("utf-8", "replace")
            for line in text.split():
                out[f"db/{folder}/{line.strip().replace(chr(92), '/')}"] = split
    return out


def nuaa_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    split_of = _nuaa_split(snap, commit)
    groups: dict[tuple[str, str, str, str, str], list[int]] = defaultdict(list)
    for folder, label in (("ClientRaw", "real"), ("ImposterRaw", "spoof")):
        for path in _ls_tree(snap.git_dir, commit, f"db/{folder}"):
            m = _NUAA_NAME.fullmatch(path.rsplit("/", 1)[1])
            if m is None:
                continue  # Thumbs.db
            groups[(label, m["sid"], m["glasses"], m["pos"], m["session"])].append(int(m["pic"]))
    rows: list[Presentation] = []
    for (label, sid, glasses, pos, session), pics in sorted(groups.items()):
        pics.sort()
        k = max(1, round(len(pics) / NUAA_CHUNK))
        bounds = np.linspace(0, len(pics), k + 1).round().astype(int)
        folder = "ClientRaw" if label == "real" else "ImposterRaw"
        d = f"db/{folder}/{sid}"
        pattern = f"{sid}_{glasses}_{pos}_{session}_{{}}.jpg"
        for c in range(k):
            chunk = pics[bounds[c] : bounds[c + 1]]
            paths = [f"{d}/{pattern.format(n)}" for n in chunk]
            splits = {split_of.get(p, "none") for p in paths}
            split = splits.pop() if len(splits) == 1 else "mixed"
            tag = "real" if label == "real" else "print"
            desc = NUAA_POS.get(pos, f"pos {pos}")
            rows.append(
                Presentation(
                    id=f"{tag}_{sid}_g{glasses}_p{pos}_s{session}_c{c + 1:02d}",
                    source="nuaa",
                    repo=NUAA,
                    commit=commit,
                    label=label,
                    attack_type="none" if label == "real" else "print",
                    medium="live" if label == "real" else "print",
                    support="none" if label == "real" else "hand",
                    light="unknown",
                    subject=f"nuaa:{sid}",
                    split=split,
                    dir=d,
                    pattern=pattern,
                    frames=" ".join(str(n) for n in chunk),
                    sha256=_pin(snap, commit, paths),
                    note="; ".join(
                        x
                        for x in (
                            f"glasses={'yes' if glasses == '00' else 'no'}",
                            desc,
                            f"picNo {chunk[0]}-{chunk[-1]}",
                        )
                        if x
                    ),
                )
            )
    return rows


# GRID file names encode the sentence, not the speaker; speakers were told apart on sight (first frames):
# every clip shows a different person except pwij3p and id2_vcd_swwp2s (the same man). Not source labels.
GRID_CLIPS = {
    "bbaf2n": "v01",
    "brbk7n": "v02",
    "lbax4n": "v03",
    "lbbc2a": "v04",
    "lrwp9a": "v05",
    "lwbsza": "v06",
    "pwij3p": "v07",
    "sbia1a": "v08",
    "sbwe5n": "v09",
    "swiz3n": "v10",
    "id2_vcd_swwp2s": "v07",
}


def grid_rows(snap: GitSnapshot, commit: str) -> list[Presentation]:
    rows: list[Presentation] = []
    for path in _ls_tree(snap.git_dir, commit, "evaluation/samples"):
        if not path.endswith(".mpg"):
            continue
        d, name = path.rsplit("/", 1)
        stem = name[:-4]
        rows.append(
            Presentation(
                id=stem,
                source="grid",
                repo=GRID,
                commit=commit,
                label="real",
                attack_type="none",
                medium="live",
                support="none",
                light="controlled",
                subject=f"grid:{GRID_CLIPS.get(stem, 'unknown')}",
                split="none",
                dir=d,
                pattern="{}.mpg",
                frames=stem,
                sha256=_pin(snap, commit, [path]),
                note="speaker told apart on sight, not a GRID speaker number",
            )
        )
    return rows


def build_manifest(mirror_root: Path, out: Path = MANIFEST) -> list[Presentation]:
    rows: list[Presentation] = []
    for repo, builder in ((REPLAY_ATTACK, replay_attack_rows), (NUAA, nuaa_rows), (GRID, grid_rows)):
        with GitSnapshot(snapshot_dir(mirror_root, repo)) as snap:
            commit = _head(snap.git_dir)
            got = builder(snap, commit)
            log.info("%s@%s: %d presentations", repo, commit[:12], len(got))
            rows.extend(got)
    write_manifest(out, rows)
    return rows


# ---- CLI -----------------------------------------------------------------------------------------------------
def summarize(rows: Sequence[Presentation]) -> dict[str, Any]:
    return {
        "presentations": len(rows),
        "by_source_label": dict(sorted(Counter(f"{r.source}/{r.label}" for r in rows).items())),
        "by_attack_type": dict(sorted(Counter(f"{r.source}/{r.attack_type}" for r in rows).items())),
        "subjects": dict(sorted(Counter(r.source for r in {r.subject: r for r in rows}.values()).items())),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.liveness_data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="verify the pinned sources and assemble the videos into the cache")
    f.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    f.add_argument(
        "--cache", type=Path, default=None, help="default: $PENSION_CERT_LIVENESS_DIR or ~/.cache/pension-cert/liveness"
    )
    f.add_argument(
        "--limit-per-source", type=int, default=None, help="at most N presentations per source, balanced over subjects"
    )
    f.add_argument("--manifest", type=Path, default=MANIFEST)
    f.add_argument("--jobs", type=int, default=2)
    f.add_argument("--keep-sources", action="store_true", help="also copy the verified source files to the cache")
    b = sub.add_parser("build-manifest", help="(maintainers) pin the HEAD commits of the snapshots")
    b.add_argument("--mirror-root", type=Path, default=Path("/work/.mirror"))
    b.add_argument("--manifest", type=Path, default=MANIFEST)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.cmd == "build-manifest":
            rows = build_manifest(args.mirror_root, args.manifest)
            print(summarize(rows))
            return 0
        cache = args.cache or default_cache()
        summary = fetch(args.mirror_root, cache, args.manifest, args.limit_per_source, args.jobs, args.keep_sources)
        rows = select(read_manifest(args.manifest), args.limit_per_source)
        summary.update(summarize(rows))
        summary["cache"] = str(cache)
        summary["cache_mb"] = round(sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20, 1)
        print(summary)
        return 0
    except (IntegrityError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
