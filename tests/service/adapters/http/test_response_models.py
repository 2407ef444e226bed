"""Every JSON route of the public API declares its response model and its endpoint returns that model (issue 20:
routes returned untyped dicts): what OpenAPI documents is what the code is type-checked against."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.responses import Response

from service.adapters.http import routes_certificates, routes_registry, routes_revocations, routes_sessions
from service.features.proxy import routes as proxy_routes
from service.features.wechat import routes as wechat_routes

ROUTERS: dict[str, APIRouter] = {
    "sessions": routes_sessions.router,
    "registry": routes_registry.router,
    "revocations": routes_revocations.router,
    "certificates": routes_certificates.router,
    "proxy": proxy_routes.router,
    "wechat": wechat_routes.router,
}


def _members(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set(typing.get_args(annotation))
    return {annotation}


def _is_response(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, Response)


def json_routes(router: APIRouter) -> list[tuple[APIRoute, set[Any]]]:
    """The documented routes that answer JSON, with what their endpoint declares it returns (a Response left out)."""
    out = []
    for route in router.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        returned = {t for t in _members(typing.get_type_hints(route.endpoint)["return"]) if not _is_response(t)}
        if returned:  # only a Response (a PNG, a CSV export): no JSON body to describe
            out.append((route, returned))
    return out


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_json_routes_return_their_declared_response_model(name: str) -> None:
    routes = json_routes(ROUTERS[name])
    assert routes  # each router answers JSON somewhere
    for route, returned in routes:
        assert route.methods is not None
        where = f"{sorted(route.methods)} {route.path}"
        assert route.response_model is not None, f"{where}: no response_model"
        assert returned == _members(route.response_model), (
            f"{where}: returns {returned}, documents {route.response_model}"
        )
        assert not any(typing.get_origin(t) is dict for t in returned), f"{where}: returns a bare dict"


def test_the_check_sees_an_untyped_route() -> None:
    router = APIRouter()

    @router.get("/typed-elsewhere", response_model=dict[str, int])
    def untyped() -> dict[str, Any]:
        return {}

    [(route, returned)] = json_routes(router)
    assert returned != _members(route.response_model)
