from __future__ import annotations

from pathlib import Path

import pytest

from models.store import ENV_MODELS_DIR as ENV
from service.adapters.cli.common import CliError
from service.adapters.cli.models_cmd import check_models
from tests.service.adapters.cli.conftest import CliRunner, json_lines


def test_models_list_reports_status_of_each_model(cli: CliRunner, tmp_path: Path, models_dir: Path) -> None:
    ok = {d["name"]: d for d in json_lines(cli("models", "list").stdout)}
    assert ok["yunet_2023mar"]["status"] == "ok"
    assert ok["w600k_r50"]["status"] == "missing"  # not distributed in shared/models
    assert ok["w600k_mbf_int8"]["commercial_use"] is False
    (tmp_path / "face_detection_yunet_2023mar.onnx").write_bytes(b"x" * 232589)
    proc = cli("models", "list", "--pack", "default", env={"PENSION_CERT_MODELS_DIR": str(tmp_path)})
    rows = {d["name"]: d["status"] for d in json_lines(proc.stdout)}
    assert rows["yunet_2023mar"] == "hash_mismatch"
    assert rows["mobilefacenet_foamliu"] == "missing"
    default_pack = {"yunet_2023mar", "mobilefacenet_foamliu", "minifasnet_v2", "minifasnet_v1se", "mediapipe_facemesh"}
    assert set(rows) == default_pack


def test_models_fetch_copies_and_verifies_a_pack(cli: CliRunner, tmp_path: Path, models_dir: Path) -> None:
    target = tmp_path / "models"
    env = {"PENSION_CERT_MODELS_DIR": str(target)}
    proc = cli("models", "fetch", "--pack", "default", "--from", str(models_dir), env=env)
    assert proc.returncode == 0, proc.stderr
    assert all(d["status"] == "ok" for d in json_lines(proc.stdout))
    listed = {d["name"]: d["status"] for d in json_lines(cli("models", "list", "--pack", "default", env=env).stdout)}
    assert set(listed.values()) == {"ok"}
    # A source without the file fails clearly, with a non-zero exit.
    bad = cli("models", "fetch", "w600k_r50", "--from", str(models_dir), env=env)
    assert bad.returncode != 0
    assert "w600k_r50.onnx is missing" in bad.stdout


def test_an_unknown_model_or_pack_name_is_a_usage_error(cli: CliRunner, tmp_path: Path, models_dir: Path) -> None:
    """A typo in a model or pack name exits 2 (bad input) before anything is fetched, not 3 ("models missing",
    which tells the operator to fetch files that do not exist)."""
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path / "models")}
    for args in (
        ("models", "fetch", "yunet_2023mar", "no_such_model", "--from", str(models_dir)),
        ("models", "fetch", "--pack", "no_such_pack", "--from", str(models_dir)),
        ("models", "list", "--pack", "no_such_pack"),
    ):
        proc = cli(*args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "not in models/manifest.toml" in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "models").exists()  # the known name before the typo was not fetched either


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr and "Errno" not in stderr, stderr
    return lines[0]


def test_fetch_into_a_models_dir_that_is_a_file_is_one_configuration_line(
    cli: CliRunner, tmp_path: Path, models_dir: Path
) -> None:
    """PENSION_CERT_MODELS_DIR naming a file (or a folder under a file): one line naming the variable and the
    mistake, exit 4 (configuration), once, not five per-model "File exists" errors ending in exit 3 (models)."""
    (tmp_path / "afile").write_text("x")
    cases = {
        tmp_path / "afile": "is a file, not a folder",
        tmp_path / "afile" / "sub": "a folder on its path is a file",
    }
    for target, words in cases.items():
        proc = cli("models", "fetch", "--pack", "default", "--from", str(models_dir), env={ENV: str(target)})
        line = _one_line(proc.stderr)
        assert proc.returncode == 4, proc.stderr
        assert line.startswith(f"pension-cert: CONFIG_INVALID: {ENV}={target}: {words}"), line
        assert proc.stdout == ""  # nothing was tried model by model
    assert (tmp_path / "afile").read_text() == "x"


def test_an_unreadable_model_is_told_to_fix_the_path_not_to_fetch(cli: CliRunner, tmp_path: Path) -> None:
    """`unreadable` (a folder on the path is a file, or reading is refused): fetching cannot help, the advice is
    the path or the permissions; missing or damaged files keep the fetch advice."""
    (tmp_path / "afile").write_text("x")
    proc = cli("models", "list", "--pack", "default", env={ENV: str(tmp_path / "afile")})
    line = _one_line(proc.stderr)
    assert proc.returncode == 3 and line.startswith("pension-cert: MODEL_UNAVAILABLE: pack default cannot run: ")
    assert "models fetch" not in line
    assert line.endswith(f"fix the path or the permissions ({ENV}={tmp_path / 'afile'})"), line
    (tmp_path / "empty").mkdir()
    missing = _one_line(cli("models", "list", "--pack", "default", env={ENV: str(tmp_path / "empty")}).stderr)
    assert missing.endswith("run `pension-cert models fetch --pack default`"), missing
    assert "fix the path" not in missing


def test_the_start_check_gives_the_same_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` and the workers refuse to start with the pack's files unreadable: the path, not a fetch."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv(ENV, str(tmp_path / "afile"))
    with pytest.raises(CliError) as refused:
        check_models("default")
    assert refused.value.exit_code == 3 and "models fetch" not in str(refused.value)
    assert "fix the path or the permissions" in str(refused.value)
