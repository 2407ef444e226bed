"""Every atheris harness imports and judges real inputs (its seeds' kind and the kept regressions) the way the
fuzzer would, so a renamed function or a changed exception breaks a test here, not the next fuzzing run."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest

from service.certification.errors import ServiceError

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
TARGETS = ("video_intake", "image_intake", "roster_import", "idnumber")


def harness(target: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"fuzz.{target}")
    entry: Callable[[bytes], None] = module.test_one_input
    return entry


@pytest.mark.parametrize("target", TARGETS)
def test_every_documented_target_has_a_harness(target: str) -> None:
    assert (FUZZ / f"{target}.py").is_file()
    assert callable(harness(target))


@pytest.mark.parametrize("target", ["video_intake", "roster_import"])
def test_kept_regressions_are_judged_without_a_crash(target: str) -> None:
    run = harness(target)
    files = sorted((FUZZ / "regressions" / target).iterdir())
    assert files
    for path in files:
        run(path.read_bytes())  # a crash would raise


def test_roster_harness_accepts_a_coded_refusal_and_re_raises_anything_else() -> None:
    from fuzz.harness import expect_roster_error

    run = harness("roster_import")
    run(b"c" + "姓名,身份证号\n张三,110101194001011234\n".encode())  # a CSV with rows: row results, no refusal
    run(b"c\xff\xfe\x00bad")  # not UTF-8: ROSTER_FORMAT, a documented refusal
    expect_roster_error(ServiceError("ROSTER_TOO_LARGE"))
    with pytest.raises(ServiceError):
        expect_roster_error(ServiceError("INTERNAL_BUG"))


def test_idnumber_harness_finds_the_two_checkers_in_agreement() -> None:
    run = harness("idnumber")
    for text in ("11010519491231002X", "110105194912310021", "", "x" * 40, "１１０１０５"):
        run(text.encode())
