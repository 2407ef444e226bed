"""CSV files saved by Excel start with a byte-order mark: the calibration readers take them like any other."""

from __future__ import annotations

from pathlib import Path

from pipelines.face_match.evaluation import read_identities, read_pairs
from pipelines.liveness.calibrate import read_spoof_csv

BOM = "\ufeff"


def test_the_calibration_csv_readers_take_a_byte_order_mark(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(BOM + "path_a,path_b,label\na.jpg,b.jpg,1\n", encoding="utf-8")
    (pair,) = read_pairs(pairs)
    assert (pair.path_a, pair.path_b, pair.genuine) == ("a.jpg", "b.jpg", True)
    faces = tmp_path / "faces.csv"
    faces.write_text(BOM + "path,identity,source\na.jpg,p1,lfw\n", encoding="utf-8")
    assert read_identities(faces, "lfw") == {"a.jpg": "p1"}
    spoof = tmp_path / "spoof.csv"
    spoof.write_text(BOM + "path,label\nv.mp4,real\n", encoding="utf-8")
    assert read_spoof_csv(spoof) == [{"path": "v.mp4", "label": "real"}]
