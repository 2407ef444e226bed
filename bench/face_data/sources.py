"""Build ``manifest.csv`` and ``relations.csv`` from the repository snapshots (maintainers; needs the snapshots).

Each source is read at a pinned commit; every file's sha256 is computed from the snapshot's blob. What is taken
from each source, and why, is in ``docs/face_data.md``.
"""

from __future__ import annotations

import csv
import random
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.face_data.manifest import MANIFEST, FaceRow, write_manifest
from bench.liveness_data.manifest import check_allowed
from bench.liveness_data.snapshots import GitSnapshot, sha256_hex, snapshot_dir

RELATIONS = MANIFEST.with_name("relations.csv")
RELATION_COLUMNS = ("source", "family", "subject_a", "subject_b", "relation")

UTKFACE = ("mattans/AgeProgression", "2d937c615a3d10408db0ea795842e569bc9eedb0")
# A history commit: the data was removed at HEAD (af98865).
TSKINFACE = ("urielsinger/familyGan", "7715c05cf2aa16e59f30833986151d8a2fe113b9")
FIW = ("samirmehd1yev/kinship_detection", "f14d31e7ee4549ee93b32c4e094a679be3ccf6ee")
ASIAN_FACES = ("nz0001na/Asian_faces", "6f5cfc611d516693fee09968d4af23f366c8217e")

UTK_RACES = {"0": "white", "1": "black", "2": "asian", "3": "indian", "4": "other"}
UTK_OTHER_PER_RACE = 200  # non-Asian adults kept per race: negatives for the ethnicity check, not calibration
# FIW families whose members are East-Asian (Chinese, Japanese, Korean), chosen by the members' names in the
# source's metadata and checked on sight; see docs/face_data.md.
FIW_EAST_ASIAN = (
    "F0757",
    "F0856",
    "F0857",
    "F0860",
    "F0861",
    "F0863",
    "F0865",
    "F0867",
    "F0868",
    "F0869",
    "F0899",
    "F0901",
    "F0904",
    "F0944",
    "F0945",
    "F0946",
    "F0947",
    "F0948",
    "F0949",
    "F0951",
    "F0992",
)
# FIW mid.csv codes: the relation of the row member to the column member.
FIW_RELATIONS = {1: "parent_child", 2: "siblings", 3: "grandparent", 4: "parent_child", 5: "spouse", 6: "grandparent"}
ASIAN_FACES_DIRS = (
    "DCleaning_tool/target_images",
    "sample_images",
    "sample_Japan",
    "sample_Korea",
)


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=True).stdout


def _full_commit(git_dir: Path, commit: str) -> str:
    return _git(git_dir, "rev-parse", f"{commit}^{{commit}}").strip()


def _ls(git_dir: Path, commit: str, prefix: str) -> list[tuple[str, str]]:
    """(blob id, path) of the files under ``prefix`` at ``commit``."""
    out = []
    for line in _git(git_dir, "ls-tree", "-r", commit, "--", prefix).splitlines():
        meta, path = line.split("\t", 1)
        out.append((meta.split()[2], path))
    return out


class _Reader:
    def __init__(self, mirror_root: Path, repo: str, commit: str) -> None:
        self.git_dir = snapshot_dir(mirror_root, repo)
        self.repo = repo
        self.commit = _full_commit(self.git_dir, commit)
        self.snap = GitSnapshot(self.git_dir)

    def sha(self, path: str) -> str:
        check_allowed(self.repo, [path])
        return sha256_hex(self.snap.read(self.commit, path))


def utkface(mirror_root: Path) -> Iterator[FaceRow]:
    r = _Reader(mirror_root, *UTKFACE)
    rx = re.compile(r"^(\d+)_([01])_([0-4])_\d+\.jpg\.chip\.jpg$")
    by_race: dict[str, list[tuple[str, re.Match[str]]]] = {}
    for _, path in _ls(r.git_dir, r.commit, "data/UTKFace/unlabeled/"):
        m = rx.match(path.rsplit("/", 1)[1])
        if m and int(m.group(1)) >= 18:
            by_race.setdefault(m.group(3), []).append((path, m))
    rng = random.Random(17)
    for race, items in sorted(by_race.items()):
        items.sort()
        chosen = items if race == "2" else rng.sample(items, min(UTK_OTHER_PER_RACE, len(items)))
        for path, m in sorted(chosen):
            name = path.rsplit("/", 1)[1].split(".")[0]
            yield FaceRow(
                f"utkface_{name}",
                "utkface",
                r.repo,
                r.commit,
                path,
                r.sha(path),
                f"utkface:{name}",
                f"utkface:{name}",
                "",
                m.group(1),
                "m" if m.group(2) == "0" else "f",
                UTK_RACES[race],
            )
    r.snap.close()


def tskinface(mirror_root: Path, relations: list[dict[str, str]]) -> Iterator[FaceRow]:
    r = _Reader(mirror_root, *TSKINFACE)
    base = "data/TSKinFace_Data/TSKinFace_source"
    shas: dict[str, str] = {}
    for kind in ("FMD", "FMS", "FMSD"):
        text = r.snap.read(r.commit, f"{base}/{kind}_information/{kind}_FaceList_Last_combine.txt").decode()
        groups: dict[str, list[str]] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 5:
                continue
            photo, role = parts[0].replace("\\", "/"), parts[1]
            cx, cy, rad = (float(v) for v in parts[2:])
            path = f"{base}/{photo}"
            if path not in shas:
                shas[path] = r.sha(path)
            stem = photo.rsplit("/", 1)[1].rsplit(".", 1)[0]
            half = 1.6 * rad  # the listed radius is about half the eye-to-chin height: keep the whole head
            region = f"{cx - half:.0f} {cy - half:.0f} {cx + half:.0f} {cy + half:.0f}"
            groups.setdefault(stem, []).append(role)
            yield FaceRow(
                f"tskinface_{stem}-{role}",
                "tskinface",
                r.repo,
                r.commit,
                path,
                shas[path],
                f"tskinface:{stem}-{role}",
                f"tskinface:{stem}",
                role,
                "",
                "m" if role in "FS" else "f",
                "",
                region,
            )
        for stem, roles in groups.items():
            relations.extend(_tskinface_relations(stem, roles))
    r.snap.close()


def _tskinface_relations(stem: str, roles: list[str]) -> Iterator[dict[str, str]]:
    for i, a in enumerate(roles):
        for b in roles[i + 1 :]:
            pair = {a, b}
            rel = "spouse" if pair == {"F", "M"} else "siblings" if pair == {"S", "D"} else "parent_child"
            yield {
                "source": "tskinface",
                "family": f"tskinface:{stem}",
                "subject_a": f"tskinface:{stem}-{a}",
                "subject_b": f"tskinface:{stem}-{b}",
                "relation": rel,
            }


def fiw(mirror_root: Path, relations: list[dict[str, str]]) -> Iterator[FaceRow]:
    r = _Reader(mirror_root, *FIW)
    base = "data/raw/fiw/train/train-faces"
    for fam in FIW_EAST_ASIAN:
        mids = list(csv.reader(r.snap.read(r.commit, f"{base}/{fam}/mid.csv").decode("utf-8", "replace").splitlines()))
        header, members = mids[0], mids[1:]
        n = len(header) - 3  # MID, the relation columns, Name, Gender
        for row in members:
            for j in range(n):
                code = int(row[1 + j] or 0)
                if code and int(row[0]) < j + 1 and code in FIW_RELATIONS:
                    relations.append(
                        {
                            "source": "fiw",
                            "family": f"fiw:{fam}",
                            "subject_a": f"fiw:{fam}/MID{row[0]}",
                            "subject_b": f"fiw:{fam}/MID{j + 1}",
                            "relation": FIW_RELATIONS[code],
                        }
                    )
        genders = {f"MID{row[0]}": row[-1].strip().lower()[:1] for row in members}
        for _, path in _ls(r.git_dir, r.commit, f"{base}/{fam}/"):
            parts = path.split("/")
            # "._*" files are macOS resource forks committed alongside the images, not images.
            bad = len(parts) != 8 or not parts[6].startswith("MID") or parts[-1].startswith("._")
            if bad or not path.lower().endswith(".jpg"):
                continue
            mid, name = parts[6], parts[7].rsplit(".", 1)[0]
            yield FaceRow(
                f"fiw_{fam}_{mid}_{name}",
                "fiw",
                r.repo,
                r.commit,
                path,
                r.sha(path),
                f"fiw:{fam}/{mid}",
                f"fiw:{fam}",
                mid,
                "",
                genders.get(mid, "") if genders.get(mid, "") in ("m", "f") else "",
                "east_asian",
            )
    r.snap.close()


def asian_faces(mirror_root: Path) -> Iterator[FaceRow]:
    r = _Reader(mirror_root, *ASIAN_FACES)
    seen: set[str] = set()
    for top in ASIAN_FACES_DIRS:
        group = top.rsplit("/", 1)[-1].replace("_images", "").replace("sample_", "").lower() or "target"
        for blob, path in _ls(r.git_dir, r.commit, f"{top}/"):
            parts = path[len(top) + 1 :].split("/")
            if len(parts) != 2 or not re.search(r"\.(jpe?g|png)$", path, re.IGNORECASE) or blob in seen:
                continue
            seen.add(blob)
            ident, name = parts[0], parts[1].rsplit(".", 1)[0]
            subject = f"asian_faces:{group}/{ident}"
            yield FaceRow(
                f"asian_faces_{group}_{ident}_{name}",
                "asian_faces",
                r.repo,
                r.commit,
                path,
                r.sha(path),
                subject,
                subject,
                "",
                "",
                "",
                "east_asian",
            )
    r.snap.close()


def build_manifest(mirror_root: Path, path: Path = MANIFEST) -> list[FaceRow]:
    relations: list[dict[str, str]] = []
    rows = [
        *utkface(mirror_root),
        *tskinface(mirror_root, relations),
        *fiw(mirror_root, relations),
        *asian_faces(mirror_root),
    ]
    write_manifest(rows, path)
    with path.with_name(RELATIONS.name).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=RELATION_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(relations, key=lambda d: (d["source"], d["family"], d["subject_a"], d["subject_b"])))
    return rows


JUDGEMENTS = MANIFEST.with_name("pair_judgements.csv")
LINKS = MANIFEST.with_name("links.csv")


def build_links(embeddings_dir: Path, path: Path = LINKS) -> int:
    """Same-person links: two-recognizer agreement (identities.LINK_THRESHOLDS) plus pairs judged by eye."""
    from pipelines.face_match.population.faceset import FaceSet
    from pipelines.face_match.population.identities import LINK_THRESHOLDS, linked_pairs

    first, _ = FaceSet.load(embeddings_dir / "default.npz")
    second, _ = FaceSet.load(embeddings_dir / "insightface.npz")
    agreed = linked_pairs(first, second, LINK_THRESHOLDS["mobilefacenet_foamliu"], LINK_THRESHOLDS["w600k_mbf_int8"])
    rows = {tuple(sorted(p)): "two_recognizers" for p in agreed}
    with JUDGEMENTS.open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["judgement"] == "same":
                rows.setdefault(tuple(sorted((r["id_a"], r["id_b"]))), "eye")
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id_a", "id_b", "how"])
        for (a, b), how in sorted(rows.items()):
            w.writerow([a, b, how])
    return len(rows)
