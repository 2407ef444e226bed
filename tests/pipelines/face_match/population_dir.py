"""A small population directory in the layout of the face cache (index.csv, relations.csv, links.csv, images),
built from the real LFW faces of ``shared/data/faces`` for end-to-end tests of the population calibration.

The labels are this fixture's own, not facts about the people: the pipeline trusts the index, and that is what
the tests check. The 231 faces curated as 60+ are labelled East-Asian with their age in 2003 (the LFW news
years), so that the 50+ population has enough impostor pairs for a 1e-4 tail fit (at least 50 beyond its 99th
percentile); the faces of 40 other people are labelled East-Asian without an age (adults, not 50+). A "utkface"
group carries ethnicity labels for the probe: the East-Asian-named LFW people as "asian", 40 more people as
"other". A four-person "tskinface" family has no ethnicity label (the probe decides it) and two children (never
in a population). Zhu Rongji's images are split into two subjects linked by links.csv (one person under two
labels); one image has no face.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np

from pipelines.face_match.population.dataset import INDEX, LINKS, RELATIONS

COLUMNS = ("path", "id", "source", "subject", "family", "role", "age", "gender", "ethnicity")
EAST_ASIAN_NAMES = frozenset(
    {
        "Ai_Sugiyama",
        "Antony_Leung",
        "Candie_Kung",
        "Chan_Choi",
        "Chen_Liang_Yu",
        "Choi_Sung-hong",
        "Fujio_Cho",
        "Gong_Ruina",
        "Ham_Pong-sil",
        "Han_Sung_Joo",
        "Hisao_Oguchi",
        "Ken_Watanabe",
        "Lee_Soo-hyuck",
        "Lee_Tae-sik",
        "Lee_Yeo-jin",
        "Li_Changchun",
        "Li_Ka-shing",
        "Lim_Dong-won",
        "Lin_Yung_Hsi",
        "Liu_Xiaoqing",
        "Masahiko_Nagasawa",
        "Miyako_Miyazaki",
        "Qian_Qichen",
        "Saburo_Kawabuchi",
        "Shi_Guangsheng",
        "Soon_Yi",
        "Vicki_Zhao_Wei",
        "Yingfan_Wang",
        "Yoko_Ono",
        "Yoshiyuki_Kamei",
        "Yukio_Hatoyama",
        "Zeng_Qinghong",
        "Zhang_Wenkang",
    }
)
N_YOUNGER = 40
N_OTHER = 40
FAMILY = "tskinface:fam1"
ZHU_A, ZHU_B = "lfw:Zhu_Rongji/a", "lfw:Zhu_Rongji/b"
NO_FACE_ID = "blank"


def _row(
    rel: str, source: str, subject: str, family: str, age: str = "", ethnicity: str = "", role: str = ""
) -> dict[str, str]:
    return {
        "path": rel,
        "id": Path(rel).stem,
        "source": source,
        "subject": subject,
        "family": family,
        "role": role,
        "age": age,
        "gender": "",
        "ethnicity": ethnicity,
    }


def index_rows(faces_dir: Path) -> list[dict[str, str]]:
    with (faces_dir / "faces.csv").open(newline="", encoding="utf-8") as fh:
        lfw = sorted((r for r in csv.DictReader(fh) if r["source"] == "lfw_deepfunneled"), key=lambda r: r["path"])
    elder = [r for r in lfw if r["older_60plus_curated"] == "yes"]
    asian = [r for r in lfw if r["identity"] in EAST_ASIAN_NAMES]
    rest = [r for r in lfw if r["older_60plus_curated"] != "yes" and r["identity"] not in EAST_ASIAN_NAMES]
    rows: list[dict[str, str]] = []
    zhu = 0
    for r in elder:
        subject = f"lfw:{r['identity']}"
        if r["identity"] == "Zhu_Rongji":
            subject, zhu = (ZHU_A if zhu < 4 else ZHU_B), zhu + 1
        age = str(2003 - int(r["approx_birth_year"]))
        rows.append(_row(r["path"], "asian_faces", subject, subject, age, "east_asian"))
    for r in asian:
        rows.append(_row(r["path"], "utkface", f"lfw:{r['identity']}", f"lfw:{r['identity']}", "", "asian"))
    # Whole identities only, so that no person is both in a population and among the probe's negatives.
    people = sorted({r["identity"] for r in rest})
    younger = set(people[0::3][:N_YOUNGER])
    others = set(people[1::3][:N_OTHER])
    family = people[2::3][:4]
    for r in rest:
        subject = f"lfw:{r['identity']}"
        if r["identity"] in younger:
            rows.append(_row(r["path"], "asian_faces", subject, subject, "", "east_asian"))
        elif r["identity"] in others:
            rows.append(_row(r["path"], "utkface", subject, subject, "", "other"))
    for role, name in zip(("F", "M", "S", "D"), family, strict=True):
        first = next(r for r in rest if r["identity"] == name)
        rows.append(_row(first["path"], "tskinface", f"{FAMILY}-{role}", FAMILY, role=role))
    rows.append(_row(f"{NO_FACE_ID}.png", "asian_faces", "lfw:blank", "lfw:blank", "70", "east_asian"))
    return rows


def build(root: Path, faces_dir: Path, rows: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Write the directory (images copied from ``faces_dir``), of all rows or of ``rows``; returns the rows."""
    every = index_rows(faces_dir)
    rows = every if rows is None else rows
    root.mkdir(parents=True, exist_ok=True)
    for r in rows:
        target = root / r["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if r["id"] == NO_FACE_ID:
            cv2.imwrite(str(target), np.full((160, 160, 3), 120, np.uint8))
        else:
            shutil.copyfile(faces_dir / r["path"], target)
    with (root / INDEX).open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    zhu_a = next(r["id"] for r in every if r["subject"] == ZHU_A)
    zhu_b = next(r["id"] for r in every if r["subject"] == ZHU_B)
    with (root / LINKS).open("w", newline="", encoding="utf-8") as fh:
        fh.write(f"id_a,id_b,how\n{zhu_a},{zhu_b},eye\nnot_in_the_index,{zhu_a},eye\n")
    with (root / RELATIONS).open("w", newline="", encoding="utf-8") as fh:
        fh.write("source,family,subject_a,subject_b,relation\n")
        for a, b, rel in (
            ("F", "M", "spouse"),
            ("F", "S", "parent_child"),
            ("M", "D", "parent_child"),
            ("S", "D", "siblings"),
        ):
            fh.write(f"tskinface,{FAMILY},{FAMILY}-{a},{FAMILY}-{b},{rel}\n")
    return rows


_BUILT: dict[Path, list[dict[str, str]]] = {}


def shared(base: Path, faces_dir: Path) -> tuple[Path, list[dict[str, str]]]:
    """One directory per test session (``base`` is the session's temporary root), built on first use."""
    root = base / "population"
    if root not in _BUILT:
        _BUILT[root] = build(root, faces_dir)
    return root, _BUILT[root]
