"""bench/face_data: the pinned manifest, verified fetch from a fake snapshot (sha256 refusal), face crops from
group photos, and the consistency of the committed manifest, relations, links and pair judgements."""

from __future__ import annotations

import csv
import re
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ImageFile

from bench.face_data import cache as face_cache
from bench.face_data.cache import INDEX_COLUMNS, crop_region, default_cache, fetch
from bench.face_data.cli import main
from bench.face_data.manifest import COLUMNS, MANIFEST, FaceRow, read_manifest, summarize, write_manifest
from bench.liveness_data.manifest import check_allowed
from bench.liveness_data.snapshots import IntegrityError, sha256_hex
from tests.bench.gitrepo import git as _git

DATA = MANIFEST.parent


def group_photo() -> np.ndarray:
    """200x120 BGR image whose every pixel tells its position."""
    img = np.zeros((120, 200, 3), np.uint8)
    img[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]
    img[:, :, 1] = np.arange(120, dtype=np.uint8)[:, None]
    img[:, :, 2] = 77
    return img


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image)


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, str, dict[str, bytes]]:
    """A bare git snapshot of owner/fake with a one-face image and a family photo (lossless PNG)."""
    work = tmp_path / "work"
    (work / "faces").mkdir(parents=True)
    (work / "photos").mkdir()
    blobs: dict[str, bytes] = {}
    ok, one = cv2.imencode(".jpg", np.full((64, 64, 3), 90, np.uint8))
    ok2, group = cv2.imencode(".png", group_photo())
    assert ok and ok2
    for path, data in (("faces/61_0_2_x.jpg", one.tobytes()), ("photos/fam1.png", group.tobytes())):
        (work / path).write_bytes(data)
        blobs[path] = data
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "faces")
    commit = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "mirror" / "owner+fake" / "repo"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare, commit, blobs


def rows_for(commit: str, blobs: dict[str, bytes]) -> list[FaceRow]:
    one, fam = sha256_hex(blobs["faces/61_0_2_x.jpg"]), sha256_hex(blobs["photos/fam1.png"])
    return [
        FaceRow(
            "utkface_61_0_2_x",
            "utkface",
            "owner/fake",
            commit,
            "faces/61_0_2_x.jpg",
            one,
            "utkface:61_0_2_x",
            "utkface:61_0_2_x",
            "",
            "61",
            "m",
            "asian",
        ),
        FaceRow(
            "tskinface_fam1-F",
            "tskinface",
            "owner/fake",
            commit,
            "photos/fam1.png",
            fam,
            "tskinface:fam1-F",
            "tskinface:fam1",
            "F",
            "",
            "m",
            "",
            region="10 20 60 70",
        ),
        # Partly outside the photo (right and top edges): padded with black.
        FaceRow(
            "tskinface_fam1-S",
            "tskinface",
            "owner/fake",
            commit,
            "photos/fam1.png",
            fam,
            "tskinface:fam1-S",
            "tskinface:fam1",
            "S",
            "",
            "m",
            "",
            region="170 -10 230 50",
        ),
    ]


def write_side_files(manifest: Path) -> None:
    manifest.with_name("relations.csv").write_text(
        "source,family,subject_a,subject_b,relation\ntskinface,tskinface:fam1,tskinface:fam1-F,tskinface:fam1-S,"
        "parent_child\n",
        encoding="utf-8",
    )
    manifest.with_name("links.csv").write_text("id_a,id_b,how\n", encoding="utf-8")


def test_manifest_round_trip_sorted_with_out_paths(tmp_path: Path) -> None:
    rows = rows_for("c" * 40, {"faces/61_0_2_x.jpg": b"a", "photos/fam1.png": b"b"})
    path = tmp_path / "manifest.csv"
    write_manifest(reversed(rows), path)
    parsed = read_manifest(path)
    assert parsed == sorted(rows, key=lambda r: (r.source, r.id))
    assert [r.out_path for r in rows] == [
        "utkface/faces/61_0_2_x.jpg",
        "tskinface/crops/tskinface_fam1-F.png",
        "tskinface/crops/tskinface_fam1-S.png",
    ]
    assert summarize(parsed) == {
        "tskinface": {"faces": 2, "subjects": 2, "families": 1},
        "utkface": {"faces": 1, "subjects": 1, "families": 1},
    }


def test_manifest_rejects_other_columns_and_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text(",".join(COLUMNS[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="columns"):
        read_manifest(path)
    row = rows_for("c" * 40, {"faces/61_0_2_x.jpg": b"a", "photos/fam1.png": b"b"})[0]
    write_manifest([row, replace(row, path="faces/other.jpg")], path)
    with pytest.raises(ValueError, match=r"duplicate ids \['utkface_61_0_2_x'\]"):
        read_manifest(path)


def test_crop_region_cuts_and_pads() -> None:
    img = group_photo()
    ok, png = cv2.imencode(".png", img)
    assert ok
    inside = crop_region(png.tobytes(), "10 20 60 70")
    assert np.array_equal(inside, img[20:70, 10:60])
    edge = crop_region(png.tobytes(), "170 -10 230 50")
    assert edge.shape == (60, 60, 3)
    assert np.array_equal(edge[10:, :30], img[0:50, 170:200])
    assert not edge[:10].any() and not edge[:, 30:].any()
    assert not crop_region(png.tobytes(), "300 300 340 340").any()  # entirely outside: black


def test_crop_region_decodes_a_truncated_photo(monkeypatch: pytest.MonkeyPatch) -> None:
    # crop_region switches Pillow to accept truncated files, process-wide: restored after this test.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    ok, jpg = cv2.imencode(".jpg", group_photo(), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    cut = jpg.tobytes()[:-2]  # no end-of-image marker: OpenCV refuses it
    assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is None
    crop = crop_region(cut, "10 20 60 70")
    full = decode(jpg.tobytes())[20:70, 10:60]
    assert crop.shape == full.shape and np.abs(crop.astype(int) - full.astype(int)).max() <= 3


def test_fetch_writes_verified_faces_crops_and_index(
    snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path
) -> None:
    bare, commit, blobs = snapshot
    manifest = tmp_path / "data" / "manifest.csv"
    manifest.parent.mkdir()
    rows = rows_for(commit, blobs)
    write_manifest(rows, manifest)
    write_side_files(manifest)
    cache = tmp_path / "cache"
    assert fetch(bare.parents[1], cache, manifest) == {"utkface": 1, "tskinface": 2}
    assert (cache / "utkface/faces/61_0_2_x.jpg").read_bytes() == blobs["faces/61_0_2_x.jpg"]
    father = decode((cache / "tskinface/crops/tskinface_fam1-F.png").read_bytes())
    assert np.array_equal(father, group_photo()[20:70, 10:60])
    son = decode((cache / "tskinface/crops/tskinface_fam1-S.png").read_bytes())
    assert son.shape == (60, 60, 3) and not son[:, 30:].any()
    with (cache / "index.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == INDEX_COLUMNS
        index = list(reader)
    by_id = {r["id"]: r for r in index}
    assert [r["path"] for r in index] == [r.out_path for r in read_manifest(manifest)]
    assert by_id["utkface_61_0_2_x"] == {
        "path": "utkface/faces/61_0_2_x.jpg",
        "id": "utkface_61_0_2_x",
        "source": "utkface",
        "subject": "utkface:61_0_2_x",
        "family": "utkface:61_0_2_x",
        "role": "",
        "age": "61",
        "gender": "m",
        "ethnicity": "asian",
    }
    assert by_id["tskinface_fam1-S"]["role"] == "S" and by_id["tskinface_fam1-S"]["family"] == "tskinface:fam1"
    for name in ("relations.csv", "links.csv"):
        assert (cache / name).read_bytes() == manifest.with_name(name).read_bytes()


def test_fetch_refuses_a_sha256_mismatch_and_a_missing_commit(
    snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare, commit, blobs = snapshot
    manifest = tmp_path / "manifest.csv"
    rows = rows_for(commit, blobs)
    write_manifest([rows[0], replace(rows[1], sha256="0" * 64)], manifest)
    write_side_files(manifest)
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError, match=r"sha256 mismatch for owner/fake@.*photos/fam1.png; refusing it"):
        fetch(bare.parents[1], cache, manifest)
    assert not (cache / "index.csv").exists() and not (cache / "tskinface").exists()
    # The command line says so on stderr and exits 1.
    argv = ["fetch", "--mirror-root", str(bare.parents[1]), "--cache", str(cache), "--manifest", str(manifest)]
    assert main(argv) == 1
    assert "error: sha256 mismatch" in capsys.readouterr().err
    write_manifest([replace(r, commit="f" * 40) for r in rows], manifest)
    with pytest.raises(IntegrityError, match="lacks commit ffffffffffff"):
        fetch(bare.parents[1], cache, manifest)
    write_manifest(rows, manifest)
    assert main(argv) == 0 and (cache / "index.csv").is_file()


def test_default_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PENSION_CERT_FACES_DIR", str(tmp_path / "faces"))
    assert default_cache() == tmp_path / "faces"
    monkeypatch.delenv("PENSION_CERT_FACES_DIR")
    assert default_cache() == Path.home() / ".cache" / "pension-cert" / "faces"
    assert face_cache.INDEX_NAME == "index.csv"


# -- the committed data ---------------------------------------------------------------------------------------


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_committed_manifest_is_pinned_and_allowed() -> None:
    rows = read_manifest()
    assert {r.source for r in rows} == {"utkface", "tskinface", "fiw", "asian_faces"}
    for r in rows:
        check_allowed(r.repo, [r.path])  # no never-take repository or file name (raises)
        assert re.fullmatch(r"[0-9a-f]{40}", r.commit) and re.fullmatch(r"[0-9a-f]{64}", r.sha256), r
        assert r.region == "" or re.fullmatch(r"-?\d+ -?\d+ -?\d+ -?\d+", r.region), r
    assert len({r.out_path for r in rows}) == len(rows)  # no two faces written to one file
    # A subject belongs to one family; UTKFace faces carry an age and an ethnicity.
    families = Counter((r.subject, r.family) for r in rows)
    assert len({s for s, _ in families}) == len(families)
    assert all(r.age and r.ethnicity for r in rows if r.source == "utkface")


def test_committed_relations_links_and_judgements_name_manifest_faces() -> None:
    rows = read_manifest()
    ids = {r.id: r for r in rows}
    family_of = {r.subject: r.family for r in rows}
    relations = read_csv("relations.csv")
    assert relations and {r["relation"] for r in relations} <= {"parent_child", "siblings", "grandparent", "spouse"}
    for r in relations:
        assert family_of[r["subject_a"]] == family_of[r["subject_b"]] == r["family"], r
    links = read_csv("links.csv")
    assert links and {r["how"] for r in links} <= {"two_recognizers", "eye"}
    for r in links:
        assert r["id_a"] in ids and r["id_b"] in ids and r["id_a"] < r["id_b"], r
        assert ids[r["id_a"]].family != ids[r["id_b"]].family  # a link joins two families, else it is pointless
    judgements = read_csv("pair_judgements.csv")
    assert judgements and {r["judgement"] for r in judgements} <= {"same", "different", "unsure"}
    linked = {(r["id_a"], r["id_b"]) for r in links}
    for r in judgements:
        assert r["id_a"] in ids and r["id_b"] in ids, r
        if r["judgement"] == "same":  # every pair judged one person by eye is linked
            assert tuple(sorted((r["id_a"], r["id_b"]))) in linked, r
