"""The command line answers at once: building the parser, `--help`, usage errors, `models list` and the settings
check import no model runtime (onnxruntime, insightface, OpenCV) and not the service app. Checked in a fresh
interpreter, as a user's shell runs it, by looking at sys.modules after the command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("onnxruntime", "insightface", "cv2", "service.adapters.http.app")
# Runs the CLI's main() in-process, then reports its exit code and which heavy modules got imported.
PROBE = """
import json, sys
from service.adapters.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # argparse: --help exits 0, a usage error exits 2
    code = exc.code
heavy = [m for m in {heavy!r} if m in sys.modules]
sys.stderr.write("\\nPROBE " + json.dumps({{"code": code, "heavy": heavy}}) + "\\n")
"""


def probe(*args: str, heavy: tuple[str, ...] = HEAVY) -> tuple[int, list[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PROBE "))
    result = json.loads(line[len("PROBE ") :])
    return int(result["code"]), list(result["heavy"]), proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("--help",), 0),
        (("certify", "--help"), 0),
        (("serve", "--help"), 0),
        (("match", "--no-such-option"), 2),  # argparse usage error
        (("certify",), 2),  # neither --id-card/--video nor --batch
        (("match", "only-one.jpg"), 2),
        (("console", "create-user"), 2),  # required --username/--role
        (("liveness", "--batch", "/no/such.csv"), 2),  # FILE_NOT_FOUND before any model loads
        (("models", "list", "--pack", "default"), 0),
        (("console", "--help"), 0),
        (("console", "verify-audit", "--help"), 0),
        # A bad --challenge is refused by pipelines.liveness.challenge, which must not drag in the checker
        # (the package __init__ is lazy for this).
        (("liveness", "/no/such.mp4", "--challenge", "smile"), 2),
        (("certify", "--id-card", "a.jpg", "--video", "b.mp4", "--challenge", "blink,smile"), 2),
    ],
)
def test_cli_answers_without_loading_model_runtimes(args: tuple[str, ...], code: int) -> None:
    got, heavy, output = probe(*args)
    assert got == code, output
    assert heavy == [], f"{args} imported {heavy}"


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_help_load_neither_settings_nor_database(command: str) -> None:
    """serve_cmd imports service.infra.config (pydantic-settings) and service.certification.context (SQLAlchemy,
    the stores) in its handlers: at the top they made `serve --help` take a third of a second."""
    got, loaded, output = probe(
        command,
        "--help",
        heavy=(*HEAVY, "service.infra.config", "service.certification.context", "sqlalchemy", "pydantic_settings"),
    )
    assert got == 0 and "usage: pension-cert " + command in output
    assert loaded == [], f"{command} --help imported {loaded}"


def test_a_bad_challenge_names_the_known_actions() -> None:
    got, _heavy, output = probe("liveness", "/no/such.mp4", "--challenge", "smile")
    assert got == 2
    assert "BAD_CHALLENGE: unknown action(s) smile; known: blink, turn_left, turn_right, nod, open_mouth" in output


def test_a_missing_input_file_is_refused_before_any_model_loads() -> None:
    got, heavy, output = probe("match", "/no/such/a.jpg", "/no/such/b.jpg")
    assert got == 2 and heavy == [] and "FILE_NOT_FOUND: /no/such/a.jpg: no such file" in output


def test_the_command_table_matches_the_command_modules() -> None:
    """`pension-cert --help` shows the table's help lines: each module registers exactly those names, with
    that help, so the short listing and the full parser cannot drift apart."""
    import argparse

    from service.adapters.cli import COMMANDS, build_parser

    full = build_parser()  # every module registered
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == {name: help_line for name, (_module, help_line) in COMMANDS.items()}
    lazy = build_parser(["--help"])  # the table alone: placeholders with the same names and help
    lazy_sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    assert {c.dest: c.help for c in lazy_sub._choices_actions} == registered


def test_top_level_help_imports_no_command_module() -> None:
    got, _heavy, output = probe("--help")
    assert got == 0 and "certify" in output
    proc = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom service.adapters.cli import build_parser\nbuild_parser(['--help'])\n"
         "print(sorted(m for m in sys.modules if m.endswith('_cmd') or m.startswith(('sqlalchemy', 'numpy'))))"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_app_imports_no_insightface() -> None:
    """insightface (with onnx and ml_dtypes) took about a second of every process that imports the API: `serve`,
    each worker, each command that builds the service (`revoke`, `cycle run`, `console …`), none of which detects
    a face before its first job. It is imported when a SCRFD or ArcFace model is built, or a face aligned."""
    code = "import sys, service.adapters.http.app\nprint(sorted({'insightface', 'onnx'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
