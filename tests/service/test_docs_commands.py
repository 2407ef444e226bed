"""Every command line of the README and docs/ is checked, so that a doc that goes stale fails CI (issue 24 item 6).

Each fenced ``bash`` block is one of three kinds, said by an HTML comment on the line before it:

- ``<!-- doc-test: run TEST_FILE (TEST_NAME) -->``: a test runs it (the walk-throughs: the test must exist);
- ``<!-- doc-test: illustrative — WHY -->``: not run, with the reason (needs Docker, PostgreSQL, a download of
  hundreds of MB, or runs for many minutes; other tests cover what it does);
- anything else (or ``<!-- doc-test: checked — NOTE -->``) is checked here, line by line: a ``pension-cert``
  line must parse with the real command line (sub-command, required arguments, option names and choices), a
  script must exist, a ``python`` program must accept every option the line gives it (from its own ``--help``),
  a ``pytest`` path must exist. A line this test cannot check fails it: the block must then be run by a test or
  marked illustrative.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.adapters.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"<!-- doc-test: (run|illustrative|checked)\b\s*(.*?)\s*-->")
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OPTIONAL = re.compile(r"\s\[([^\[\]]*)\]")  # synopsis notation: `[--pack P]`, `[--a X | --b Y]`


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    kind: str  # run | illustrative | checked
    why: str
    text: str

    def __str__(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in BLOCK.finditer(text):
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mark = MARKER.fullmatch(before.strip())
            kind, why = (mark.group(1), mark.group(2)) if mark else ("checked", "")
            found.append(Block(doc, text[: m.start()].count("\n") + 1, kind, why, m.group(1)))
    return found


def command_lines(text: str) -> list[list[str]]:
    """The block's commands as words: continuations joined, comments and `&`/`&&` handled, `VAR=x` prefixes and
    `export` lines (environment only) left out."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in (v for raw in joined.splitlines() for v in variants(raw)):
        words = shlex.split(line, comments=True)
        for part in " ".join(shlex.quote(w) for w in words).split(" '&&' "):
            cmd = [w for w in shlex.split(part) if w != "&"]
            while cmd and ASSIGNMENT.match(cmd[0]):
                cmd = cmd[1:]
            if cmd and cmd[0] != "export":
                commands.append(cmd)
    return commands


def variants(line: str) -> list[str]:
    """A synopsis line as the commands it stands for: without its optional parts, then with each alternative of
    each optional part (`liveness VIDEO [--challenge A] [--pack P]` → 3 commands)."""
    groups = OPTIONAL.findall(line.split(" #", 1)[0])
    if not groups:
        return [line]
    base = OPTIONAL.sub("", line.split(" #", 1)[0])
    return [base] + [f"{base} {alt.strip()}" for group in groups for alt in group.split("|")]


@functools.cache
def help_text(program: tuple[str, ...]) -> str:
    run = subprocess.run([*program, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, f"{' '.join(program)} --help failed: {run.stderr[-500:]}"
    return run.stdout


def check_python(cmd: list[str]) -> None:
    """`python bench/x.py [SUB] --opt …` or `python -m bench.x SUB --opt …`: the program exists and knows each
    option (its own --help, of the sub-command when there is one)."""
    args = cmd[1:]
    if args[0] == "-m":
        target, rest = ["-m", args[1]], args[2:]
        assert (REPO / (args[1].replace(".", "/"))).with_suffix(".py").exists() or (
            REPO / args[1].replace(".", "/") / "__main__.py"
        ).exists(), f"no module {args[1]}"
    else:
        target, rest = [args[0]], args[1:]
        assert (REPO / args[0]).is_file(), f"no program {args[0]}"
    sub = [w for w in rest[:1] if not w.startswith("-") and "/" not in w and "." not in w]
    usage = help_text((sys.executable, *target, *sub))
    for word in rest:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", usage), f"{option} unknown to {target}"


def check_pension_cert(cmd: list[str]) -> None:
    try:
        build_parser().parse_args(cmd[1:])
    except SystemExit as exc:
        raise AssertionError(f"`{shlex.join(cmd)}` does not parse (exit {exc.code})") from None


def check_command(cmd: list[str]) -> None:
    program = Path(cmd[0]).name
    if program == "pension-cert":
        check_pension_cert(cmd)
    elif program == "bash" or cmd[0].startswith("scripts/"):
        script = cmd[1] if program == "bash" else cmd[0]
        assert (REPO / script).is_file(), f"no script {script}"
    elif program in ("python", "python3"):
        check_python(cmd)
    elif program == "pytest":
        for word in cmd[1:]:
            if not word.startswith("-") and word not in ("faults",):  # `-m faults`: a marker, not a path
                assert (REPO / word.split("::")[0]).exists(), f"no test path {word}"
    else:
        raise AssertionError(
            f"`{shlex.join(cmd)}`: not checkable here; run the block in a test or mark it illustrative"
        )


def inline_commands() -> list[tuple[str, str]]:
    """(doc, span) for every inline code span of the docs that names a `pension-cert` command."""
    span = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:\.venv/bin/)?pension-cert [^`]+)`")
    return [(str(doc.relative_to(REPO)), m.group(1)) for doc in DOCS for m in span.finditer(doc.read_text("utf-8"))]


def command_parser(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub-)parser the words lead to, and the words left for it."""
    parser = build_parser()
    while words:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or words[0] not in subs[0].choices:
            break
        parser, words = subs[0].choices[words[0]], words[1:]
    return parser, words


ALL = blocks()
INLINE = inline_commands()


def test_every_doc_has_its_blocks_found() -> None:
    assert len(ALL) >= 20 and any(b.kind == "run" for b in ALL)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "checked"], ids=str)
def test_checked_block(block: Block) -> None:
    commands = command_lines(block.text)
    assert commands, f"{block}: no command"
    for cmd in commands:
        try:
            check_command(cmd)
        except AssertionError as exc:
            raise AssertionError(f"{block}: {exc}") from None


@pytest.mark.parametrize("block", [b for b in ALL if b.kind != "checked"], ids=str)
def test_marked_block_names_its_test_or_reason(block: Block) -> None:
    if block.kind == "illustrative":
        assert len(block.why) > 20, f"{block}: say why the block is not run"
        return
    m = re.fullmatch(r"(\S+\.py) \((\w+)\)", block.why)
    assert m is not None, f"{block}: `run` names TEST_FILE (TEST_NAME)"
    test_file = REPO / m.group(1)
    assert test_file.is_file() and f"def {m.group(2)}(" in test_file.read_text(encoding="utf-8"), block


@pytest.mark.parametrize(("doc", "span"), INLINE, ids=[f"{d}:{s[:60]}" for d, s in INLINE])
def test_inline_command_names_a_real_command_and_options(doc: str, span: str) -> None:
    """An inline mention (a synopsis or a reference, not always a whole command) names an existing sub-command
    and only options that sub-command has."""
    words = [w.strip("[]") for w in shlex.split(span.replace("\\|", "|")) if not ASSIGNMENT.match(w)][1:]
    parser, rest = command_parser(words)
    assert parser.prog != "pension-cert", f"{doc}: `{span}` names no sub-command"
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert not subs or (rest and rest[0].startswith("-")), f"{doc}: `{span}`: {parser.prog} needs a sub-command"
    for word in rest:
        if word.startswith("--"):
            assert word in parser._option_string_actions, f"{doc}: `{span}`: {parser.prog} has no {word}"


def test_a_stale_command_is_caught() -> None:
    """The checks can fail: the README's former `console create-user` line (no --username / --role) and an
    option a bench program does not have."""
    with pytest.raises(AssertionError, match="does not parse"):
        check_command(["pension-cert", "console", "create-user"])
    with pytest.raises(AssertionError, match="unknown to"):
        check_command(["python", "bench/face_match.py", "--no-such-option"])
    with pytest.raises(AssertionError, match="not checkable"):
        check_command(["docker", "compose", "up"])
    parser, rest = command_parser(["console", "create-usr", "--username", "a"])  # a misspelt sub-command
    assert parser.prog == "pension-cert console" and rest[0] == "create-usr"
    parser, rest = command_parser(["serve", "--listen", "0.0.0.0"])  # an option `serve` does not have
    assert parser.prog == "pension-cert serve" and "--listen" not in parser._option_string_actions
