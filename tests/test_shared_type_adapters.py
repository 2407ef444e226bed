"""The suite's shared route fields (tests/shared_type_adapters.py) validate exactly as FastAPI's own would."""

# No `from __future__ import annotations` here: the routes below read `limit` from their closure at definition.
from typing import Annotated

import pytest
from fastapi import FastAPI, Query
from fastapi._compat import v2
from fastapi.testclient import TestClient
from pydantic import Field
from pydantic.fields import FieldInfo

from tests import shared_type_adapters


def _app(limit: int) -> FastAPI:
    app = FastAPI()

    @app.get("/n")
    def n(value: Annotated[int, Query(le=limit)], flag: bool = False) -> dict[str, int | bool]:
        return {"value": value, "flag": flag}

    return app


def test_the_suite_runs_with_shared_fields() -> None:
    assert shared_type_adapters.install(), "this FastAPI's ModelField changed: see tests/shared_type_adapters.py"


def _at_most(limit: int) -> FieldInfo:
    return FieldInfo.from_annotation(Annotated[int, Field(le=limit)])  # type: ignore[arg-type]


def test_equal_fields_share_one_adapter_and_different_ones_do_not() -> None:
    same = [v2.ModelField(field_info=_at_most(7), name="v") for _ in range(2)]
    other = v2.ModelField(field_info=_at_most(8), name="v")
    assert same[0]._type_adapter is same[1]._type_adapter
    assert other._type_adapter is not same[0]._type_adapter


@pytest.mark.parametrize(("first", "second"), [(0, False), (1, 1.0)])
def test_defaults_equal_in_python_but_of_other_types_are_kept_apart(first: object, second: object) -> None:
    a = v2.ModelField(field_info=FieldInfo(annotation=int, default=first), name="v")
    b = v2.ModelField(field_info=FieldInfo(annotation=int, default=second), name="v")
    key_a, key_b = (shared_type_adapters.field_key(f, v2.asdict) for f in (a, b))
    assert key_a is not None and key_b is not None
    assert key_a != key_b


def test_apps_built_from_different_limits_still_validate_by_their_own() -> None:
    with TestClient(_app(5)) as five, TestClient(_app(50)) as fifty:
        assert five.get("/n", params={"value": 9}).status_code == 422
        assert fifty.get("/n", params={"value": 9}).json() == {"value": 9, "flag": False}
        assert fifty.get("/n", params={"value": 51}).status_code == 422
        assert five.get("/n", params={"value": 3, "flag": "yes"}).json() == {"value": 3, "flag": True}
