"""bench/roster.py on a tiny roster: its synthetic people are valid for the service, every form of the file is read
back to the same rows, and the JSON has the layout docs/benchmarks.md describes, with positive figures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bench import roster as bench_roster
from service.certification import idnumber
from service.certification.roster import read_table, validate_row

NAMES_OUTSIDE_GBK = ("䶮", "𠈌")
DAY = dt.date(2026, 5, 1)  # the import's (the bureau's) date: bench people are born 1935-1967


def test_the_synthetic_people_are_valid_rows_with_rare_names() -> None:
    people = bench_roster.people(3000)
    assert len({p["external_id"] for p in people}) == len({p["id_number"] for p in people}) == 3000
    assert all(idnumber.validate(p["id_number"], DAY) is None for p in people[:500])
    assert all(validate_row(2, p, DAY)[1] == [] for p in people[:500])
    rare = [p["name"] for p in people if any(ch in p["name"] for ch in NAMES_OUTSIDE_GBK)]
    assert rare and any("·" in p["name"] for p in people)


def test_every_form_of_the_file_reads_back_the_same_rows() -> None:
    people = bench_roster.people(400)
    expected = [p["name"] for p in people]
    assert any(ch in "".join(expected) for ch in NAMES_OUTSIDE_GBK)  # the GB18030 file holds four-byte names
    for fmt in bench_roster.FORMATS:
        name, data = bench_roster.roster_file(people, fmt)
        rows = [cells for _, cells in read_table(name, data)]
        assert [r["name"] for r in rows] == expected, fmt
        assert [r["id_number"] for r in rows] == [p["id_number"] for p in people], fmt


def test_the_bench_writes_positive_figures_for_every_form_and_compares_with_a_before_run(tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    assert bench_roster.main(["--rows", "30", "--repeat", "1", "--formats", "utf8", "xlsx", "--out", str(before)]) == 0
    out = tmp_path / "roster.json"
    argv = ["--rows", "40", "--xlsx-rows", "20", "--repeat", "2", "--compare", str(before), "--out", str(out)]
    assert bench_roster.main(argv) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert {"when", "machine", "code", "backend", "config", "parse", "import", "before", "after_over_before"} <= set(
        result
    )
    assert result["machine"]["cpus"] > 0 and result["code"]["commit"]
    encodings = {fmt: entry["encoding"] for fmt, entry in result["parse"].items()}
    assert encodings == {
        "utf8": "UTF-8",
        "utf8_bom": "UTF-8 (BOM)",
        "gb18030": "GB18030",
        "utf16_tab": "UTF-16",
        "xlsx": None,
    }
    for fmt, entry in result["parse"].items():
        assert entry["rows"] == (20 if fmt == "xlsx" else 40)
        assert entry["bytes"] > 0 and entry["parse_median_ms"] > 0 and entry["peak_mib"] > 0, fmt
        assert entry["parse_max_ms"] >= entry["parse_median_ms"] and entry["rows_per_s"] > 0
    imported = result["import"]
    assert (imported["format"], imported["created"], imported["unchanged_on_reimport"]) == ("utf8", 40, 40)
    assert imported["first_import_median_s"] > 0 and imported["reimport_median_s"] > 0
    assert set(result["before"]["parse"]) == {"utf8", "xlsx"}
    assert set(result["after_over_before"]) == {"utf8", "xlsx", "import"}
    assert all(ratio > 0 for entry in result["after_over_before"].values() for ratio in entry.values())


def test_the_bench_imports_with_a_leaked_signing_key_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation or a leaked key listed in the shell the bench runs in (the import cost measured then, Part AR):
    the import terms ask the features' hooks, and the bench's context had none installed (FeaturesNotInstalled)."""
    monkeypatch.setenv("PENSION_CERT_SIGNING_KEYS_LEAKED", '["an-old-leaked-signing-key-0123456789"]')
    out = tmp_path / "roster.json"
    argv = ["--rows", "30", "--xlsx-rows", "10", "--repeat", "1", "--formats", "utf8", "--out", str(out)]
    assert bench_roster.main(argv) == 0
    imported = json.loads(out.read_text(encoding="utf-8"))["import"]
    assert (imported["created"], imported["unchanged_on_reimport"]) == (30, 30)
