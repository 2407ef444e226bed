"""The command line's contract: one meaning per exit code (service/adapters/cli/common.py, README "Command line"),
messages with a reason code and never a Python object, errno text or list, and `certify --batch`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.adapters.cli import main
from service.adapters.cli.common import EXIT_CONFIG, EXIT_INPUT, EXIT_MODEL
from tests.service.adapters.cli.conftest import CliRunner, json_lines
from tests.service.media import LIVE_ACTIONS, LIVE_VIDEO, card_for_video

INTERNALS = ("object at 0x", "Errno", "<none>", "['", "Traceback")


def assert_clean(stderr: str) -> None:
    assert stderr.startswith("pension-cert: "), stderr
    assert not any(bad in stderr for bad in INTERNALS), stderr


def test_non_media_and_missing_files_name_what_they_are(cli: CliRunner, tmp_path: Path, data_dir: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("hello")
    pdf = tmp_path / "clip.mp4"
    pdf.write_bytes(b"%PDF-1.4\n" + b"\0" * 100)
    card = str(data_dir / "idcard/synthetic/card_000.jpg")
    cases = [
        (("match", str(notes), str(notes)), "MEDIA_UNSUPPORTED", "content is a text file (text/plain), not an image"),
        (("liveness", str(pdf)), "MEDIA_UNSUPPORTED", "content is a PDF document (application/pdf), not a video"),
        (("liveness", str(tmp_path / "none.mp4")), "FILE_NOT_FOUND", "none.mp4: no such file"),
        (("liveness", str(data_dir / LIVE_VIDEO), "--challenge", "smile"), "BAD_CHALLENGE", "unknown action(s) smile"),
        # An unreadable card and an unreadable video are the same failure: exit 2 with the reason code.
        (("certify", "--id-card", str(notes), "--video", str(pdf)), "MEDIA_UNSUPPORTED", "not an image"),
        (("certify", "--id-card", card, "--video", card), "MEDIA_UNSUPPORTED", "JPEG image (image/jpeg), not a video"),
        (("certify", "--id-card", str(tmp_path / "x.jpg"), "--video", card), "FILE_NOT_FOUND", "no such file"),
    ]
    for args, code, text in cases:
        proc = cli(*args)
        assert proc.returncode == EXIT_INPUT and proc.stdout == "", (args, proc.stderr)
        assert_clean(proc.stderr)
        assert f"pension-cert: {code}: " in proc.stderr and text in proc.stderr, (args, proc.stderr)


def test_models_list_exits_non_zero_when_the_pack_cannot_run(cli: CliRunner, tmp_path: Path) -> None:
    proc = cli("models", "list", "--pack", "default", env={"PENSION_CERT_MODELS_DIR": str(tmp_path)})
    assert proc.returncode == EXIT_MODEL
    assert {d["status"] for d in json_lines(proc.stdout)} == {"missing"}  # the listing is still printed
    assert_clean(proc.stderr)
    assert "MODEL_UNAVAILABLE: pack default cannot run: detector: yunet_2023mar is missing" in proc.stderr
    assert "pension-cert models fetch --pack default" in proc.stderr
    assert cli("models", "list", "--pack", "default").returncode == 0  # the shared models can run


def test_serve_refuses_a_pack_that_cannot_run_with_the_models_list_rule(cli: CliRunner, tmp_path: Path) -> None:
    """`serve` and `models list` share one rule (models_cmd.pack_problems): the same line, exit 3, before
    the workers start and leave every session queued."""
    env = {"PENSION_CERT_MODELS_DIR": str(tmp_path), "PENSION_CERT_VAR_DIR": str(tmp_path / "var")}
    proc = cli("serve", "--port", "0", env=env, timeout=120)
    assert proc.returncode == EXIT_MODEL, proc.stderr
    assert_clean(proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pension-cert: MODEL_UNAVAILABLE: pack default cannot run: ")
    listed = cli("models", "list", "--pack", "default", env=env)
    assert listed.stderr.strip() == lines[0]  # word for word what `models list` says


@pytest.mark.parametrize(
    ("env", "variables"),
    [
        ({"PENSION_CERT_ENV": "production"}, ["PENSION_CERT_MEDIA_KEY", "PENSION_CERT_SIGNING_KEY"]),
        ({"PENSION_CERT_MEDIA_KEY": "not base64!"}, ["PENSION_CERT_MEDIA_KEY"]),
        ({"PENSION_CERT_API_KEYS": "key1,key2"}, ["PENSION_CERT_API_KEYS"]),
    ],
)
def test_bad_settings_print_one_line_per_problem_and_exit_4(
    cli: CliRunner, tmp_path: Path, env: dict[str, str], variables: list[str]
) -> None:
    # Every command that opens the service database checks the settings first (common.load_settings).
    for command in (("console", "verify-audit"), ("serve", "--port", "0"), ("worker", "--once")):
        proc = cli(*command, env={**env, "PENSION_CERT_VAR_DIR": str(tmp_path)}, timeout=60)
        assert proc.returncode == EXIT_CONFIG, (command, proc.stderr)
        assert_clean(proc.stderr)
        lines = proc.stderr.splitlines()
        assert lines[0] == "pension-cert: CONFIG_INVALID: invalid settings:"
        named = [line.strip().split(":", 1)[0] for line in lines[1:]]
        assert named[: len(variables)] == variables and len(named) == len(set(named))  # one line per variable
        assert all("; fix: " in line for line in lines[1:] if line.strip().startswith(tuple(variables)))


def test_certify_batch_loads_once_and_reports_each_row(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card, fields = card_for_video(data_dir, LIVE_VIDEO)
    (tmp_path / "card.jpg").write_bytes(card)
    (tmp_path / "notes.jpg").write_text("not a photo")
    video = str(data_dir / LIVE_VIDEO)
    challenge = '"' + ",".join(LIVE_ACTIONS) + '"'  # quoted: the actions are comma-separated
    (tmp_path / "batch.csv").write_text(
        "id_card,video,challenge,beneficiary_id\n"
        f"card.jpg,{video},{challenge},{fields.id_number}\n"
        f"notes.jpg,{video},{challenge},\n"
        f"missing.jpg,{video},{challenge},\n"
        f"card.jpg,{video},smile,\n",
        encoding="utf-8",
    )
    assert main(["certify", "--batch", str(tmp_path / "batch.csv"), "--root", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id_card"] for r in rows] == ["card.jpg", "notes.jpg", "missing.jpg", "card.jpg"]
    assert rows[0]["decision"] == "accept" and rows[0]["reasons"] == []
    assert [(r["decision"], r["error"]) for r in rows[1:]] == [
        (None, "MEDIA_UNSUPPORTED"),
        (None, "FILE_NOT_FOUND"),
        (None, "BAD_CHALLENGE"),
    ]
    code = main(["certify", "--batch", str(tmp_path / "batch.csv"), "--id-card", "card.jpg"])
    assert code == EXIT_INPUT and "not both" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["liveness", "calibrate-liveness", "serve", "worker", "certify", "console"])
def test_every_command_builds_its_own_parser(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A command whose module registers a sibling (liveness + calibrate-liveness, serve + worker) parses: the
    lazy parser once stood a placeholder for the sibling first, and `calibrate-liveness` died on the conflict."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0 and f"usage: pension-cert {command}" in capsys.readouterr().out
