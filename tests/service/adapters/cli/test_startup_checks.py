"""What the service checks when it starts (docs/security.md, Part AS): a worker without its model files refuses to
start with the line `serve` gives (the file, in words, and `pension-cert models fetch --pack …`), instead of taking
tasks it can only fail; a prompts folder that is not there is a settings line, not silence. Run as the operator
runs them: the real commands in subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.adapters.cli.common import EXIT_CONFIG, EXIT_MODEL
from tests.service.adapters.cli.conftest import CliRunner
from tests.service.adapters.cli.test_cli_config_mistakes import _celery_worker, refused
from tests.service.adapters.cli.test_cli_contract import assert_clean

FETCH = "run `pension-cert models fetch --pack default`"


def _models_without_one(models_dir: Path, tmp_path: Path) -> Path:
    """A models folder copied half-way: the detector's file missing, the anti-spoof one altered (its sha256)."""
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    (folder / "face_detection_yunet_2023mar.onnx").unlink()
    data = bytearray((folder / "2.7_80x80_MiniFASNetV2.onnx").read_bytes())
    data[1000] ^= 0xFF
    (folder / "2.7_80x80_MiniFASNetV2.onnx").write_bytes(bytes(data))
    return folder


def _says_which_models(stderr: str, folder: Path) -> None:
    # Celery's own SecurityWarning (a worker run as root, as here) may come first: from there on, one line.
    ours = stderr[stderr.find("pension-cert:") :]
    assert_clean(ours)
    [line] = ours.strip().splitlines()
    assert "MODEL_UNAVAILABLE" in line, line
    assert f"yunet_2023mar is missing ({folder}/face_detection_yunet_2023mar.onnx)" in line, line
    assert "minifasnet_v2 is damaged (its sha256 is not the manifest's)" in line, line
    assert line.endswith(FETCH), line


def test_the_celery_worker_refuses_to_start_without_its_models(models_dir: Path, tmp_path: Path) -> None:
    """The Celery worker loaded the models lazily at its first task: it started, announced itself ready, took
    every task and failed each one (sessions piled up, retried, then went to staff as failed)."""
    folder = _models_without_one(models_dir, tmp_path)
    env = {
        "PENSION_CERT_MODELS_DIR": str(folder),
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached: the models are checked first
    }
    proc = _celery_worker(env, timeout=45)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    _says_which_models(proc.stderr, folder)


def test_the_celery_beat_starts_without_the_models(tmp_path: Path) -> None:
    """Beat only sends messages: it needs no model file, and is not refused for a folder that lacks them (the check
    is the worker's, at its `worker_init`)."""
    (tmp_path / "models").mkdir()
    env = {
        **os.environ,
        "PENSION_CERT_MODELS_DIR": str(tmp_path / "models"),
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    schedule = str(tmp_path / "beat-schedule")
    command = [sys.executable, "-m", "celery", "-A", "service.adapters.workers.tasks", "beat", "-s", schedule]
    beat = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            beat.wait(timeout=10)  # still running: it was not refused
    finally:
        beat.terminate()
        _, stderr = beat.communicate(timeout=30)
    assert "MODEL_UNAVAILABLE" not in stderr, stderr


def test_a_one_shot_worker_checks_its_models_too(cli: CliRunner, models_dir: Path, tmp_path: Path) -> None:
    """`pension-cert worker --once` (cron, where no worker runs) never loaded the models when nothing was queued,
    and failed each job it found: it exited 0 with a folder missing a model."""
    folder = _models_without_one(models_dir, tmp_path)
    env = {"PENSION_CERT_MODELS_DIR": str(folder), "PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    proc = cli("worker", "--once", env=env, timeout=120)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    _says_which_models(proc.stderr, folder)


def test_a_prompts_folder_that_is_not_there_is_a_settings_line(cli: CliRunner, tmp_path: Path) -> None:
    """PENSION_CERT_H5_AUDIO_DIR naming a folder that does not exist (a typo, a volume not mounted) was taken in
    silence: every prompt fell back to the synthetic voice (or none, without espeak-ng) and nobody was told."""
    missing = tmp_path / "recordings"
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_H5_AUDIO_DIR": str(missing)}
    proc = cli("serve", "--port", "0", env=env, timeout=30)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    line = refused(proc.stderr, "PENSION_CERT_H5_AUDIO_DIR")
    assert f"the folder {missing} does not exist" in line, line
    (tmp_path / "file").write_text("x")
    env["PENSION_CERT_H5_AUDIO_DIR"] = str(tmp_path / "file")
    proc = cli("serve", "--port", "0", env=env, timeout=30)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "is a file, not a folder" in refused(proc.stderr, "PENSION_CERT_H5_AUDIO_DIR")


def _one_model_line(stderr: str) -> str:
    """The one line of a refused start for a models folder that cannot be read (Celery's own SecurityWarning, a
    worker run as root, may come first), checked clean: no traceback, no Python internals."""
    ours = stderr[stderr.find("pension-cert:") :]
    assert_clean(ours)
    [line] = ours.strip().splitlines()
    assert "MODEL_UNAVAILABLE" in line, line
    assert "is unreadable (" in line, line
    assert "models fetch" not in line, line  # no fetch changes a path or a permission (Part AX)
    assert " fix the path or the permissions (PENSION_CERT_MODELS_DIR=" in line, line
    return line


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("worker", "--once")])
def test_a_models_folder_that_is_a_file_is_one_line(cli: CliRunner, tmp_path: Path, command: tuple[str, ...]) -> None:
    """PENSION_CERT_MODELS_DIR naming a file (a mount gone wrong): the stat of each model raised NotADirectoryError,
    which the check did not catch: a traceback and exit 1 instead of the models' line and exit 3."""
    (tmp_path / "notadir").write_text("x")
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path / "notadir"), "PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    proc = cli(*command, env=env, timeout=120)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    _one_model_line(proc.stderr)


def test_the_celery_worker_refuses_a_models_folder_that_is_a_file(tmp_path: Path) -> None:
    """Celery's Signal.send catches any Exception a `worker_init` handler raises and only logs it (no logging is set
    up yet): the NotADirectoryError vanished and the worker started, took tasks and failed each one."""
    (tmp_path / "notadir").write_text("x")
    env = {
        "PENSION_CERT_MODELS_DIR": str(tmp_path / "notadir"),
        "PENSION_CERT_VAR_DIR": str(tmp_path / "var"),
        "PENSION_CERT_WORKER_MODE": "celery",
        "PENSION_CERT_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached: the models are checked first
    }
    proc = _celery_worker(env, timeout=45)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    _one_model_line(proc.stderr)


def test_the_celery_model_check_stops_the_worker_on_any_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The backstop: whatever the check raises, the worker ends with one line and the models' exit code, never
    the silence of Signal.send swallowing the exception (an error no rule foresaw, here a RuntimeError)."""
    from celery import signals

    import service.adapters.cli.models_cmd as models_cmd
    import service.adapters.workers.tasks  # noqa: F401 - connects the worker_init handler

    def broken(_pack: str | None) -> None:
        raise RuntimeError("something no rule foresaw")

    monkeypatch.setattr(models_cmd, "check_models", broken)
    with pytest.raises(SystemExit) as stopped:
        signals.worker_init.send(sender=None)
    assert stopped.value.code == EXIT_MODEL
    err = capsys.readouterr().err
    assert_clean(err)
    [line] = err.strip().splitlines()
    assert "MODEL_UNAVAILABLE" in line and "something no rule foresaw" in line, line


def test_a_missing_prompts_folder_stops_only_serve(cli: CliRunner, tmp_path: Path) -> None:
    """Only the API's /h5/audio reads PENSION_CERT_H5_AUDIO_DIR: a host where it is not mounted refused every
    command with exit 4, among them the nightly `console verify-audit`, whose non-zero exit is the tampering alarm
    (and rekey, cycle-run, the Celery workers). They run; `serve` still refuses."""
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path / "var"), "PENSION_CERT_H5_AUDIO_DIR": str(tmp_path / "recordings")}
    proc = cli("console", "verify-audit", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "PENSION_CERT_H5_AUDIO_DIR" not in proc.stderr, proc.stderr
    proc = cli("serve", "--port", "0", env=env, timeout=30)
    assert proc.returncode == EXIT_CONFIG, proc.stderr
    assert "does not exist" in refused(proc.stderr, "PENSION_CERT_H5_AUDIO_DIR")


def test_the_start_check_refuses_a_changed_ocr_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve`, `worker` and the Celery worker (models_cmd.check_models): the ID-card OCR models inside their
    package are pinned as the pack's (a tampered copy stands in for the package's folder)."""
    from models import ocr_pins
    from service.adapters.cli import models_cmd
    from service.adapters.cli.common import CliError
    from tests.models.test_ocr_pins import _copy, _flip_one_byte

    folder = _copy(tmp_path)
    _flip_one_byte(folder / ocr_pins.OCR_MODELS["Rec"].file)
    monkeypatch.setattr(ocr_pins, "package_models_dir", lambda: folder)
    with pytest.raises(CliError) as refused_start:
        models_cmd.check_models(None)
    assert refused_start.value.code == "MODEL_UNAVAILABLE" and refused_start.value.exit_code == EXIT_MODEL
    assert "the ID-card OCR cannot run: id_card ocr: ppocrv4_rec is damaged" in str(refused_start.value)
