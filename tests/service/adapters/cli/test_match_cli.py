from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from tests.service.adapters.cli.conftest import CliRunner, json_lines

POWELL = "lfw/Colin_Powell/Colin_Powell_0001.jpg"
POWELL_2 = "lfw/Colin_Powell/Colin_Powell_0048.jpg"
ZHU = "lfw/Zhu_Rongji/Zhu_Rongji_0001.jpg"


def test_match_two_images_prints_one_json_object(cli: CliRunner, faces_dir: Path) -> None:
    same = cli("match", str(faces_dir / POWELL), str(faces_dir / POWELL_2))
    assert same.returncode == 0, same.stderr
    out = json.loads(same.stdout)
    assert out["band"] == "accept"
    assert out["similarity"] > out["thresholds"]["accept"]
    other = json.loads(cli("match", str(faces_dir / POWELL), str(faces_dir / ZHU)).stdout)
    assert other["band"] == "reject"
    assert other["similarity"] < out["similarity"]
    assert "FACE_MISMATCH" in other["reasons"]


def test_match_pairs_csv_prints_a_line_per_pair_with_errors_as_null(
    cli: CliRunner, faces_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cv2.imwrite(str(root / "blank.png"), np.full((200, 200, 3), 90, np.uint8))
    (root / "garbage.jpg").write_bytes(b"this is not an image")
    for rel in (POWELL, POWELL_2, ZHU):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((faces_dir / rel).read_bytes())
    pairs = tmp_path / "pairs.csv"
    rows = [
        (POWELL, POWELL_2, "1", "x"),
        (POWELL, ZHU, "0", "x"),
        (POWELL, "blank.png", "0", "x"),
        ("garbage.jpg", POWELL, "0", "x"),
        (POWELL, "missing.jpg", "0", "x"),
    ]
    with pairs.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path_a", "path_b", "label", "subset"])
        w.writerows(rows)
    proc = cli("match", "--pairs", str(pairs), "--root", str(root))
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stdout)
    assert [(d["path_a"], d["path_b"]) for d in lines] == [(r[0], r[1]) for r in rows]
    assert lines[0]["similarity"] > lines[1]["similarity"]
    assert lines[2]["similarity"] is None and lines[2]["error"] == "FACE_NOT_FOUND"
    assert lines[3]["similarity"] is None and lines[3]["error"] == "MEDIA_UNSUPPORTED"
    assert lines[4]["similarity"] is None and lines[4]["error"] == "FILE_NOT_FOUND"  # not a damaged file


def test_match_failures_exit_non_zero_with_a_message_not_a_traceback(
    cli: CliRunner, faces_dir: Path, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    a, zhu = cv2.imread(str(faces_dir / POWELL)), cv2.imread(str(faces_dir / ZHU))
    assert a is not None and zhu is not None
    b = cv2.resize(zhu, (a.shape[1], a.shape[0]))
    two = tmp_path / "two.jpg"
    cv2.imwrite(str(two), np.hstack([a, b]))
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    cases = {
        (str(faces_dir / POWELL), str(tmp_path / "nope.jpg")): "FILE_NOT_FOUND",
        (str(faces_dir / POWELL), str(text)): "MEDIA_UNSUPPORTED",
        (str(faces_dir / POWELL), str(blank)): "FACE_NOT_FOUND",
        (str(two), str(faces_dir / POWELL)): "FACE_MULTIPLE",
    }
    for (img_a, img_b), code in cases.items():
        proc = cli("match", img_a, img_b)
        assert proc.returncode != 0
        assert code in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    usage = cli("match", str(faces_dir / POWELL))
    assert usage.returncode != 0 and "exactly two images" in usage.stderr


def test_missing_models_give_a_clear_error(cli: CliRunner, faces_dir: Path, tmp_path: Path) -> None:
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path)}
    proc = cli("match", str(faces_dir / POWELL), str(faces_dir / POWELL_2), env=env)
    assert proc.returncode != 0
    assert "face_detection_yunet_2023mar.onnx is missing" in proc.stderr
    assert "pension-cert models fetch" in proc.stderr
    assert "Traceback" not in proc.stderr
