"""`pension-cert calibrate-faces --population-data`: population thresholds into the calibration file, by the CLI
as users run it, on the real-face population directory of tests/pipelines/face_match/population_dir.py."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from models.packs import load_pack
from pipelines.face_match import FaceMatcher
from pipelines.face_match.calibration import DEFAULT_CALIBRATION_PATH, FAR_KEYS, LFW, Calibration
from pipelines.face_match.population.dataset import embeddings_for
from tests.pipelines.face_match import population_dir
from tests.service.adapters.cli.conftest import CliRunner, json_lines

KEY = "mobilefacenet_foamliu@b7120c095d60+flip"  # the default pack, flip on (the CLI's default)
POPULATIONS = {LFW, "east_asian_adult", "east_asian_50plus"}


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    root, _ = population_dir.shared(tmp_path_factory.getbasetemp(), faces_dir)
    # Embedded once per session (a no-op when the pipeline tests did it): the CLI reads the cached embeddings.
    embeddings_for(FaceMatcher(load_pack("default")), root)
    return root


def lfw_only(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The committed calibration file with the default pack's entry as it was before populations existed."""
    data = json.loads(DEFAULT_CALIBRATION_PATH.read_text(encoding="utf-8"))
    entry = data["recognizers"][KEY]
    entry["thresholds"] = entry.pop("populations")[LFW]["thresholds"]
    del entry["threshold_population"]
    out = tmp_path / "calibration.json"
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out, data


def test_calibrate_faces_needs_a_source(cli: CliRunner, tmp_path: Path) -> None:
    # Usage errors as every command's: one line on stderr, exit 2, nothing on stdout.
    neither = cli("calibrate-faces", "--out", str(tmp_path / "c.json"))
    assert neither.returncode == 2 and neither.stdout == ""
    assert neither.stderr == "pension-cert: give --pairs/--root, --population-data, --from-enrolled, or several\n"
    half = cli("calibrate-faces", "--pairs", str(tmp_path / "pairs.csv"))
    assert half.returncode == 2 and half.stdout == ""
    assert half.stderr == "pension-cert: --pairs and --root go together\n"
    assert not (tmp_path / "c.json").exists()


def test_population_data_adds_populations_and_deploys_the_strictest(
    cli: CliRunner, population: Path, tmp_path: Path
) -> None:
    out, before = lfw_only(tmp_path)
    text = out.read_text(encoding="utf-8")
    dry = cli("calibrate-faces", "--population-data", str(population), "--out", str(out), "--dry-run", timeout=120)
    assert dry.returncode == 0, dry.stderr
    (printed,) = json_lines(dry.stdout)
    assert set(printed) == {"populations"} and set(printed["populations"]) == POPULATIONS - {LFW}
    assert out.read_text(encoding="utf-8") == text  # a dry run writes nothing

    run = cli("calibrate-faces", "--population-data", str(population), "--out", str(out), timeout=120)
    assert run.returncode == 0, run.stderr
    (result,) = json_lines(run.stdout)
    assert result["populations"] == printed["populations"]  # same data, same numbers
    after = json.loads(out.read_text(encoding="utf-8"))
    today = dt.date.today().isoformat()
    day, serial = before["version"].rsplit(".", 1)
    expected_version = f"{today}.{int(serial) + 1}" if day == today else f"{today}.1"
    assert result["calibration_version"] == after["version"] == expected_version
    entry = after["recognizers"][KEY]
    assert set(entry["populations"]) == POPULATIONS
    assert entry["populations"][LFW]["thresholds"] == before["recognizers"][KEY]["thresholds"]  # LFW kept
    for name in POPULATIONS - {LFW}:
        assert entry["populations"][name] == result["populations"][name]
    for far in FAR_KEYS:
        values = {name: pop["thresholds"][far] for name, pop in entry["populations"].items()}
        assert entry["thresholds"][far] == max(values.values())
        assert values[entry["threshold_population"][far]] == max(values.values())
    for key, other in before["recognizers"].items():
        if key != KEY:
            assert after["recognizers"][key] == other
    th = Calibration.load(out).thresholds("mobilefacenet_foamliu@b7120c095d60", True, "1e-4", "1e-2")
    assert th.accept == entry["thresholds"]["1e-4"] and th.accept_population == entry["threshold_population"]["1e-4"]
    assert th.review_population == entry["threshold_population"]["1e-2"]


def test_too_small_a_population_is_a_message_not_a_traceback(cli: CliRunner, faces_dir: Path, tmp_path: Path) -> None:
    first: dict[str, dict[str, str]] = {}
    for r in population_dir.index_rows(faces_dir):
        if r["source"] == "asian_faces" and r["age"]:
            first.setdefault(r["subject"], r)
    rows = list(first.values())[:12]  # twelve older people, one image each: a few dozen impostor pairs
    root = tmp_path / "tiny"
    population_dir.build(root, faces_dir, rows)
    out = tmp_path / "calibration.json"
    shutil.copyfile(DEFAULT_CALIBRATION_PATH, out)
    proc = cli("calibrate-faces", "--population-data", str(root), "--out", str(out), timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("pension-cert: ")
    assert "impostors beyond the tail quantile: too few to fit a tail" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == DEFAULT_CALIBRATION_PATH.read_bytes()


def test_lfw_pairs_replace_the_lfw_population_and_keep_the_others(
    cli: CliRunner, faces_dir: Path, tmp_path: Path
) -> None:
    with (faces_dir / "pairs.csv").open(encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    same, other = [ln for ln in lines if ",1," in ln][:8], [ln for ln in lines if ",0," in ln][:8]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\n".join([lines[0], *same, *other]) + "\n", encoding="utf-8")
    out = tmp_path / "calibration.json"
    shutil.copyfile(DEFAULT_CALIBRATION_PATH, out)
    before = json.loads(out.read_text(encoding="utf-8"))["recognizers"][KEY]
    proc = cli("calibrate-faces", "--pairs", str(pairs), "--root", str(faces_dir), "--out", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr
    (printed,) = json_lines(proc.stdout)
    lfw = printed["lfw"]
    assert lfw["stats"]["n_genuine"] == 8 and lfw["stats"]["n_impostor"] == 8
    entry = json.loads(out.read_text(encoding="utf-8"))["recognizers"][KEY]
    assert entry["stats"] == lfw["stats"]
    assert entry["populations"][LFW]["thresholds"] == lfw["thresholds"]  # the printed entry keeps its LFW values
    for name in POPULATIONS - {LFW}:
        assert entry["populations"][name] == before["populations"][name]
    for far in FAR_KEYS:
        values = {name: pop["thresholds"][far] for name, pop in entry["populations"].items()}
        assert entry["thresholds"][far] == max(values.values())
        assert values[entry["threshold_population"][far]] == max(values.values())
