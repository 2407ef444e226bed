"""Bad input an operator gives the command line: a one-line error with the input exit code, never a traceback or
exit 0 (a CSV cut short or without its columns, a calibration CSV, `serve --port` out of range, a blank
`console create-user --username`), and no full ID number echoed on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.adapters.cli import build_parser, main
from service.adapters.cli.common import EXIT_INPUT, CliError, read_csv_rows
from tests.service.adapters.cli.conftest import CliRunner, json_lines

POWELL = "lfw/Colin_Powell/Colin_Powell_0001.jpg"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "missing: path_a, path_b"),  # an empty file: no header at all
        ("foo,bar\n", "missing: path_a, path_b"),  # a header without the columns and no row
        ("path_a,path_b\nx.jpg\n", "line 2 has no field for the column(s) path_b"),  # a row cut short
    ],
)
def test_a_csv_without_its_columns_or_with_a_short_row_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text(text, encoding="utf-8")
    with pytest.raises(CliError) as refused:
        read_csv_rows(csv_file, ("path_a", "path_b"))
    assert expected in refused.value.detail


def test_a_header_only_csv_with_its_columns_is_an_empty_batch(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("path_a,path_b,label\n", encoding="utf-8")
    assert read_csv_rows(tmp_path / "pairs.csv", ("path_a", "path_b")) == []


@pytest.mark.parametrize(
    "command",
    [
        ("match", "--pairs"),
        ("liveness", "--batch"),
        ("calibrate-faces", "--dry-run", "--root", ".", "--pairs"),
        ("calibrate-liveness", "--dry-run", "--root", ".", "--spoof"),
    ],
)
def test_batch_and_calibration_csvs_are_checked_before_any_model_runs(
    command: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases: dict[str, tuple[str | bytes | None, str]] = {
        "short.csv": ("path_a,path_b,path,label\nx.jpg\n", "line 2 has no field"),
        "columns.csv": ("foo,bar\n", "missing:"),
        "gbk.csv": (b"path_a,path_b,path,label\n" + "张三.jpg,b.jpg,c,1\n".encode("gbk"), "not a UTF-8 CSV"),
        "missing.csv": (None, "FILE_NOT_FOUND"),
    }
    for name, (content, expected) in cases.items():
        if isinstance(content, str):
            (tmp_path / name).write_text(content, encoding="utf-8")
        elif content is not None:
            (tmp_path / name).write_bytes(content)
        assert main([*command, str(tmp_path / name)]) == EXIT_INPUT, (command, name)
        out, err = capsys.readouterr()
        assert out == "" and err.startswith("pension-cert: ") and expected in err, (command, name, err)
        assert len(err.splitlines()) == 1, err


def test_match_pairs_names_a_missing_image_as_such(cli: CliRunner, faces_dir: Path, tmp_path: Path) -> None:
    """FILE_NOT_FOUND / FILE_UNREADABLE as in every other batch, not MEDIA_CORRUPT (which says the file is damaged)."""
    (tmp_path / "a.jpg").write_bytes((faces_dir / POWELL).read_bytes())
    (tmp_path / "folder.jpg").mkdir()
    (tmp_path / "pairs.csv").write_text("path_a,path_b\na.jpg,missing.jpg\na.jpg,folder.jpg\n", encoding="utf-8")
    proc = cli("match", "--pairs", str(tmp_path / "pairs.csv"), "--root", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert [(d["similarity"], d["error"]) for d in json_lines(proc.stdout)] == [
        (None, "FILE_NOT_FOUND"),
        (None, "FILE_UNREADABLE"),
    ]


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    """70000 used to be taken modulo 65536: the server listened on port 4464 instead of failing."""
    words = ["serve", "--port", port]
    with pytest.raises(SystemExit) as done:
        build_parser(words).parse_args(words)
    assert done.value.code == EXIT_INPUT
    assert f"argument --port: {port} is not a port (0-65535)" in capsys.readouterr().err
    assert build_parser(["serve"]).parse_args(["serve", "--port", "0"]).port == 0  # 0: any free port


def test_create_user_strips_the_name_and_refuses_a_blank_one(cli: CliRunner, tmp_path: Path) -> None:
    env = {"PENSION_CERT_VAR_DIR": str(tmp_path), "PENSION_CERT_CONSOLE_PASSWORD": "a-long-password"}
    made = cli("console", "create-user", "--username", "admin", "--role", "admin", env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    # The stored name is stripped: " admin " is the same account, refused as existing (was an IntegrityError).
    again = cli("console", "create-user", "--username", " admin ", "--role", "reviewer", env=env, timeout=120)
    assert again.returncode == EXIT_INPUT and again.stderr.startswith("pension-cert: USER_EXISTS: user admin exists:")
    for blank in ("", "   ", "x" * 65):
        proc = cli("console", "create-user", "--username", blank, "--role", "reviewer", env=env, timeout=120)
        assert proc.returncode == EXIT_INPUT and proc.stdout == "", (blank, proc.stderr)
        assert proc.stderr == "pension-cert: --username must have 1 to 64 characters (not only spaces)\n"
    audit = cli("console", "verify-audit", env=env, timeout=120)
    assert json.loads(audit.stdout)["entries"] == 1  # only the first account was created


def test_an_unknown_beneficiary_that_looks_like_an_id_number_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped ID number (wrong check digit) is looked up as an external_id: the refusal goes to stderr (cron
    logs) and must not carry the number in full."""
    from service.adapters.cli.certify_cmd import _Beneficiaries

    monkeypatch.setenv("PENSION_CERT_VAR_DIR", str(tmp_path))
    with pytest.raises(CliError) as refused:
        _Beneficiaries().expected("420106194107214690")
    assert refused.value.code == "BENEFICIARY_UNKNOWN"
    assert "420106194107214690" not in str(refused.value) and "4201**********4690" in str(refused.value)
    with pytest.raises(CliError) as other:
        _Beneficiaries().expected("EXT-0042")
    assert "'EXT-0042'" in str(other.value)  # an external_id is shown as given


def test_every_command_masks_id_numbers_in_its_log_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The offline commands' logs go to stderr, and from cron into mails: an ID number a command logs is masked
    there as in the server's and the workers' logs."""
    import logging

    from service.adapters import cli
    from service.adapters.cli import models_cmd

    def noisy(args: object) -> int:
        logging.getLogger("pension-cert.test").warning("looked up %s", "110101199003074518")
        return 0

    monkeypatch.setattr(models_cmd, "_list", noisy)
    root = logging.getLogger()
    kept = list(root.handlers)
    try:
        for h in kept:  # basicConfig adds its stderr handler only to a root logger without one
            root.removeHandler(h)
        assert cli.main(["models", "list"]) == 0
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in kept:
            root.addHandler(h)
    err = capsys.readouterr().err
    assert "1101**********4518" in err and "110101199003074518" not in err
