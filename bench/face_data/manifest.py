"""The pinned manifest of face images: one row per face (a file, or a face region of a family photo)."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

MANIFEST = Path(__file__).resolve().parent / "manifest.csv"


@dataclass(frozen=True)
class FaceRow:
    """One face. ``region`` is empty for a one-face image, else ``x0 y0 x1 y1`` of the face in a group photo."""

    id: str
    source: str  # utkface | tskinface | fiw | asian_faces
    repo: str
    commit: str
    path: str
    sha256: str
    subject: str  # identity label; for UTKFace (no identities) the image itself
    family: str  # kinship group, or the subject when there is none
    role: str  # F/M/S/D (TSKinFace), MIDn (FIW), "" elsewhere
    age: str  # labelled age in years where the source gives one, else ""
    gender: str  # m | f | ""
    ethnicity: str  # as labelled by the source: asian | white | black | indian | other | east_asian | ""
    region: str = ""
    note: str = ""

    @property
    def out_path(self) -> str:
        """Where the face image lies in the cache (regions are cropped into their own file)."""
        if not self.region:
            return f"{self.source}/{self.path}"
        return f"{self.source}/crops/{self.id}.png"


COLUMNS = tuple(f.name for f in fields(FaceRow))


def read_manifest(path: Path = MANIFEST) -> list[FaceRow]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns {reader.fieldnames} are not {list(COLUMNS)}")
        rows = [FaceRow(**r) for r in reader]
    ids = Counter(r.id for r in rows)
    dup = [k for k, n in ids.items() if n > 1]
    if dup:
        raise ValueError(f"{path}: duplicate ids {dup[:5]}")
    return rows


def write_manifest(rows: Iterable[FaceRow], path: Path = MANIFEST) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r.source, r.id)):
            w.writerow(asdict(r))


def summarize(rows: Sequence[FaceRow]) -> dict[str, dict[str, int]]:
    """Faces, subjects and families per source."""
    out: dict[str, dict[str, int]] = {}
    for source in sorted({r.source for r in rows}):
        mine = [r for r in rows if r.source == source]
        out[source] = {
            "faces": len(mine),
            "subjects": len({r.subject for r in mine}),
            "families": len({r.family for r in mine}),
        }
    return out
