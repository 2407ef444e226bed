from __future__ import annotations

from pathlib import Path

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
