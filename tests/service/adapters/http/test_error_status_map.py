"""The one map from domain errors to HTTP status (service/adapters/http/errors.py): every code the service raises
has an entry, so a new code cannot silently answer 400, and domain code names no status."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.reasons import ReasonCode
from service.adapters.http.errors import DEFAULT_STATUS, STATUS_BY_CODE, STATUS_BY_KIND, http_status
from service.certification import catalog
from service.certification.catalog import ServiceCode
from service.certification.errors import (
    InvalidInputError,
    LockedError,
    NotFoundError,
    ServiceError,
    UnsupportedFormatError,
)
from service.features.console.assist import AssistError

SERVICE = Path(__file__).resolve().parents[4] / "service"
KIND_NAMES = {kind.__name__ for kind in STATUS_BY_KIND}


@functools.cache
def _parsed() -> tuple[tuple[Path, ast.Module], ...]:
    # Parsed once per process: the catalog's parametrisation and three tests here walk the same trees.
    return tuple(
        (path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in sorted(SERVICE.rglob("*.py"))
    )


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    yield from _parsed()


@functools.cache
def _error_classes() -> frozenset[str]:
    """ServiceError and every class in service/ derived from it (by name, to a fixed point)."""
    names = {"ServiceError"}
    classes = [node for _p, tree in _trees() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in classes:
            if node.name not in names and any(ast.unparse(base).split(".")[-1] in names for base in node.bases):
                names.add(node.name)
                grew = True
    return frozenset(names)


def error_classes() -> set[str]:
    """ServiceError and every class in service/ derived from it."""
    return set(_error_classes())


def _literal_code(node: ast.expr) -> str | None:
    """A code written in the source: "TEXT", ReasonCode.X / ServiceCode.X (.value); None when computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    text = ast.unparse(node).removesuffix(".value")
    if text.startswith("ReasonCode.") and text.count(".") == 1:
        return ReasonCode[text.split(".")[1]].value
    if text.startswith("ServiceCode.") and text.count(".") == 1:
        return ServiceCode[text.split(".")[1]].value
    return None


def _code_arg(name: str, call: ast.Call) -> ast.expr | None:
    keyword = next((k.value for k in call.keywords if k.arg == "code"), None)
    if name == "NotFoundError":  # NotFoundError(what, code="NOT_FOUND", detail=None)
        return keyword or (call.args[1] if len(call.args) > 1 else ast.Constant("NOT_FOUND"))
    return call.args[0] if call.args else keyword


def raised_codes() -> list[tuple[str, str, str]]:
    """(where, error class, code) of every domain error built with a literal code in service/."""
    return list(_raised_codes())


@functools.cache
def _raised_codes() -> tuple[tuple[str, str, str], ...]:
    classes = error_classes()
    found = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            name = ast.unparse(node.func).split(".")[-1] if isinstance(node, ast.Call) else ""
            if isinstance(node, ast.Call) and name in classes:
                arg = _code_arg(name, node)
                code = _literal_code(arg) if arg is not None else None
                if code is not None:
                    found.append((f"{path.relative_to(SERVICE.parent)}:{node.lineno}", name, code))
    return tuple(found)


def test_every_raised_code_has_a_status() -> None:
    found = raised_codes()
    assert len(found) > 60, "the scan no longer finds the raise sites"  # ~80 today
    missing = [site for site in found if site[1] not in KIND_NAMES and site[2] not in STATUS_BY_CODE]
    assert not missing, f"add these codes to STATUS_BY_CODE (service/adapters/http/errors.py): {missing}"


def test_every_catalogued_code_has_a_status() -> None:
    """Codes raised from a variable (a ProxyAuthError's reason, a MediaError's) come from the one catalog; the
    codes it lists as answered by their kind are raised only as one of STATUS_BY_KIND's classes."""
    by_kind = set(catalog.BY_KIND_MESSAGES_ZH)
    assert [code for code in catalog.codes() if code not in STATUS_BY_CODE and code not in by_kind] == []
    assert not by_kind & set(STATUS_BY_CODE)


def test_domain_errors_name_no_status() -> None:
    classes = error_classes()
    calls = [
        f"{path.name}:{node.lineno}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).split(".")[-1] in classes
        and any(k.arg == "status" for k in node.keywords)
    ]
    assert calls == []


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ServiceError("ROSTER_FORMAT", "damaged"), 422),
        (UnsupportedFormatError("ROSTER_FORMAT", "a PDF"), 415),
        (ServiceError("SESSION_STATE"), 409),
        (InvalidInputError("SESSION_STATE", "decision must be accept or reject"), 422),
        (ServiceError(ReasonCode.ATTEMPTS_EXCEEDED), 429),  # a citizen's daily limit
        (LockedError(ReasonCode.ATTEMPTS_EXCEEDED.value), 423),  # a proxy binding waiting for staff
        (NotFoundError("certification", "CERTIFICATE_INVALID", detail="no such certification"), 404),
        (ServiceError("CERTIFICATE_INVALID"), 400),
        (ServiceError(ReasonCode.MEDIA_TOO_LARGE), 413),
        (ServiceError(ReasonCode.VIDEO_TOO_SHORT), 422),
        (AssistError("ASSIST_OPEN"), 409),
        (AssistError("ASSIST_PHONE"), 422),
        (ServiceError("SOMETHING_NEW"), DEFAULT_STATUS),
    ],
)
def test_status_by_kind_then_code(error: ServiceError, status: int) -> None:
    assert http_status(error) == status


def test_not_found_keeps_its_detail() -> None:
    assert NotFoundError("session").detail == "session not found"
    assert NotFoundError("certification", "CERTIFICATE_INVALID", detail="no such certification").detail == (
        "no such certification"
    )
