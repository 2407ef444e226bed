"""The pinned manifest: one row per presentation, parsing and checks, the never-take guard, subset selection."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parent / "manifest.csv"

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


@dataclass(frozen=True)
class Presentation:
    """One manifest row: a presentation assembled from ``files()`` of ``repo@commit``."""

    id: str
    source: str  # replay_attack | nuaa | grid | elderly_talk
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


def summarize(rows: Sequence[Presentation]) -> dict[str, Any]:
    return {
        "presentations": len(rows),
        "by_source_label": dict(sorted(Counter(f"{r.source}/{r.label}" for r in rows).items())),
        "by_attack_type": dict(sorted(Counter(f"{r.source}/{r.attack_type}" for r in rows).items())),
        "subjects": dict(sorted(Counter(r.source for r in {r.subject: r for r in rows}.values()).items())),
    }
