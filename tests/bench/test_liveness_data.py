"""bench/liveness_data: manifest parsing, pinned-hash verification on a fake snapshot, video assembly."""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from bench import liveness_data as ld
from tests.bench.gitrepo import git as _git

HEADER = ",".join(ld.MANIFEST_COLUMNS)


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, str, dict[str, bytes]]:
    """A bare git snapshot with two small JPEG frames under frames/vid/."""
    work = tmp_path / "work"
    (work / "frames/vid").mkdir(parents=True)
    blobs: dict[str, bytes] = {}
    for i in range(2):
        img = np.full((240, 320, 3), 40 + 100 * i, dtype=np.uint8)
        cv2.circle(img, (160, 120), 60, (30, 200, 30 + 80 * i), -1)
        ok, enc = cv2.imencode(".jpg", img)
        assert ok
        path = f"frames/vid/frame_{i:05d}.jpg"
        (work / path).write_bytes(enc.tobytes())
        blobs[path] = enc.tobytes()
    _git(work, "init", "-q")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "two frames")
    commit = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "mirror" / "owner+fake" / "repo"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare, commit, blobs


def _row(commit: str, sha: str, **kw: str) -> ld.Presentation:
    base = {
        "id": "vid",
        "source": "replay_attack",
        "repo": "owner/fake",
        "commit": commit,
        "label": "spoof",
        "attack_type": "print",
        "medium": "print",
        "support": "hand",
        "light": "controlled",
        "subject": "replay_attack:client001",
        "split": "train",
        "dir": "frames/vid",
        "pattern": "frame_{}.jpg",
        "frames": "00000 00001",
        "sha256": sha,
        "note": "",
    }
    base.update(kw)
    return ld.Presentation(**base)


def _pinned(blobs: dict[str, bytes]) -> str:
    return ld.combined_sha256({p: ld.sha256_hex(b) for p, b in blobs.items()})


def _manifest_text(rows: list[ld.Presentation]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ld.MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r.__dict__)
    return buf.getvalue()


def test_manifest_round_trip_and_files(tmp_path: Path) -> None:
    row = _row("a" * 40, "b" * 64)
    path = tmp_path / "m.csv"
    ld.write_manifest(path, [row])
    (parsed,) = ld.read_manifest(path)
    assert parsed == row
    assert parsed.files() == ["frames/vid/frame_00000.jpg", "frames/vid/frame_00001.jpg"]
    assert parsed.out_path == "replay_attack/vid.mp4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "xyz"}, "not 64 hex"),
        ({"commit": "abc123"}, "full 40-hex commit"),
        ({"label": "real"}, "disagree"),
        ({"frames": ""}, "no frames"),
        ({"repo": "serengil/deepface"}, "never-take"),
        ({"pattern": "George_Bush_{}.jpg", "frames": "0001"}, "LFW"),
        ({"pattern": "real.mov", "frames": "x"}, "PyImageSearch"),
    ],
)
def test_manifest_rejects_bad_rows(change: dict[str, str], message: str) -> None:
    row = replace(_row("a" * 40, "b" * 64), **change)
    with pytest.raises(ValueError, match=message):
        ld.read_manifest(io.StringIO(_manifest_text([row])))


def test_manifest_rejects_missing_column_and_duplicates() -> None:
    with pytest.raises(ValueError, match="missing columns"):
        ld.read_manifest(io.StringIO("id,source\nx,y\n"))
    row = _row("a" * 40, "b" * 64)
    with pytest.raises(ValueError, match="duplicate id"):
        ld.read_manifest(io.StringIO(_manifest_text([row, row])))


def test_combined_sha256_is_order_independent() -> None:
    a = {"x/1.jpg": "1" * 64, "x/2.jpg": "2" * 64}
    assert ld.combined_sha256(a) == ld.combined_sha256(dict(reversed(list(a.items()))))
    assert ld.combined_sha256(a) != ld.combined_sha256({"x/1.jpg": "1" * 64, "x/2.jpg": "3" * 64})


def test_copy_verified_copies_matching_files(snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path) -> None:
    bare, commit, blobs = snapshot
    row = _row(commit, _pinned(blobs))
    with ld.GitSnapshot(bare) as snap:
        assert snap.has_commit(commit)
        copied = ld.copy_verified(snap, row, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in copied] == row.files()
    for p in copied:
        assert p.read_bytes() == blobs[p.relative_to(tmp_path / "out").as_posix()]


def test_verification_refuses_mismatch(snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path) -> None:
    bare, commit, blobs = snapshot
    wrong = dict(blobs)
    wrong["frames/vid/frame_00001.jpg"] = b"something else"
    row = _row(commit, _pinned(wrong))
    with ld.GitSnapshot(bare) as snap, pytest.raises(ld.IntegrityError, match=r"sha256 mismatch .* refusing"):
        ld.copy_verified(snap, row, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    missing = replace(row, frames="00000 00007")
    with ld.GitSnapshot(bare) as snap, pytest.raises(ld.IntegrityError, match="not a file at commit"):
        ld.read_verified(snap, missing)


def test_missing_snapshot_or_commit_is_a_clear_error(
    snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path
) -> None:
    with pytest.raises(ld.IntegrityError, match="fetch github:OWNER/NAME"):
        ld.GitSnapshot(tmp_path / "nope")
    bare, _commit, blobs = snapshot
    manifest = tmp_path / "m.csv"
    ld.write_manifest(manifest, [_row("f" * 40, _pinned(blobs))])
    with pytest.raises(ld.IntegrityError, match="is not in"):
        ld.fetch(bare.parents[1], tmp_path / "cache", manifest, jobs=1)


def test_fetch_assembles_and_is_idempotent(snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path) -> None:
    bare, commit, blobs = snapshot
    manifest = tmp_path / "m.csv"
    ld.write_manifest(manifest, [_row(commit, _pinned(blobs))])
    cache = tmp_path / "cache"
    first = ld.fetch(bare.parents[1], cache, manifest, jobs=1)
    assert first["built"] == 1
    with (cache / "presentations.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == ld.INDEX_COLUMNS
        (row,) = list(reader)
    assert row["path"] == "replay_attack/vid.mp4" and row["condition"] == "clean"
    assert row["source"] == f"owner/fake@{commit}"
    expected = 2 * ld.RA_HOLD
    assert int(row["n_frames"]) == expected and int(row["fps"]) == ld.RA_FPS
    with av.open(str(cache / row["path"])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (640, 480)  # 320x240 upscaled 2x
        assert sum(1 for _ in container.decode(video=0)) == expected
    second = ld.fetch(bare.parents[1], cache, manifest, jobs=1)
    assert second["built"] == 0 and second["skipped"] == 1


def test_select_balances_subjects() -> None:
    rows = [
        _row("a" * 40, "b" * 64, id=f"{s}_{i}", subject=f"replay_attack:{s}", light=("controlled", "adverse")[i % 2])
        for s in ("c1", "c2", "c3")
        for i in range(4)
    ]
    picked = ld.select(rows, 3)
    assert sorted(r.subject for r in picked) == ["replay_attack:c1", "replay_attack:c2", "replay_attack:c3"]
    assert len(ld.select(rows, 6)) == 6 and {r.light for r in ld.select(rows, 6)} == {"controlled", "adverse"}
    assert ld.select(rows, None) == rows


def test_committed_manifest_parses() -> None:
    rows = ld.read_manifest(ld.MANIFEST)
    assert ld.MANIFEST.stat().st_size < 1_000_000
    assert {r.source for r in rows} >= {"replay_attack", "nuaa", "grid"}
    assert all(r.repo.lower() not in ld.FORBIDDEN_REPOS for r in rows)


def test_real_cache_index() -> None:
    index = ld.default_cache() / ld.INDEX_NAME
    if not index.is_file():
        pytest.skip(f"liveness cache {index} is absent: run bash scripts/fetch_liveness_data.sh")
    with index.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and tuple(rows[0]) == ld.INDEX_COLUMNS
    for r in rows[:: max(1, len(rows) // 20)]:
        path = index.parent / r["path"]
        assert path.is_file(), path
        assert 2.0 <= int(r["n_frames"]) / int(r["fps"]) <= 15.0


def test_nuaa_frames_get_a_uniform_hold(snapshot: tuple[Path, str, dict[str, bytes]], tmp_path: Path) -> None:
    _, _, blobs = snapshot
    n, fps = ld.assemble("nuaa", ["0", "9"], list(blobs.values()), tmp_path / "n.mp4")
    assert (n, fps) == (2 * ld.NUAA_HOLD, ld.NUAA_FPS)
    with av.open(str(tmp_path / "n.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == n
