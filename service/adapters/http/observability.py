"""Wiring into the FastAPI app: the middleware stack and the /metrics and /readyz endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client.registry import Collector

from service.adapters.http.errors import error_body, internal_error
from service.adapters.http.health import readiness
from service.adapters.http.limits import RateLimitMiddleware
from service.adapters.http.schemas import ReadinessBody
from service.certification.context import ServiceContext
from service.certification.queue_gauges import QueueCollector
from service.infra.config import Settings
from service.infra.observability import metrics
from service.infra.observability.headers import SecurityHeadersMiddleware
from service.infra.observability.middleware import RequestContextMiddleware
from service.infra.storage import LocalEncryptedStorage


def may_read_metrics(settings: Settings, authorization: str | None) -> bool:
    """The operator's bearer token (`METRICS_TOKEN`) for /metrics and the reasons in /readyz: the one check,
    `metrics.may_read`, which a worker's own metrics port asks too."""
    return metrics.may_read(settings.observability.metrics_token, authorization, settings.env == "production")


def install_observability(app: FastAPI, ctx: ServiceContext) -> None:
    """Call after every other middleware is added: these wrap them (a 413 or 429 gets an id and headers)."""
    settings = ctx.settings
    app.add_middleware(RateLimitMiddleware, ctx=ctx)
    # Sees the final status of everything inside; answers an unhandled failure's 500 itself (with the ids).
    app.add_middleware(RequestContextMiddleware, on_error=internal_error)
    # Outermost of these: every answer gets the headers, that 500 included.
    app.add_middleware(SecurityHeadersMiddleware, public_base_url=settings.public_base_url)

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: database, media storage, broker (celery), models, workers",
        response_model=ReadinessBody,
        responses={503: {"model": ReadinessBody, "description": "a check failed"}},
    )
    def readyz(authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        # The JSONResponse goes out as built (the model only documents it): same body, status 200 or 503. Why a
        # check fails (its exception's class) only to whoever may read /metrics; the probe stays unkeyed.
        state = readiness(ctx)
        body = state.to_dict() if may_read_metrics(settings, authorization) else state.public()
        return JSONResponse(body, status_code=200 if state.ready else 503)

    if not settings.observability.metrics_enabled:
        return

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    def prometheus(authorization: Annotated[str | None, Header()] = None) -> Response:
        if not may_read_metrics(settings, authorization):
            refused = error_body("UNAUTHORIZED", "未授权的访问", "missing or wrong metrics bearer token")
            return JSONResponse(refused, 401)
        gauges: list[Collector] = [QueueCollector(ctx), *ctx.hooks.gauges.values()]
        if isinstance(ctx.storage, LocalEncryptedStorage):  # a bucket has no volume to fill
            gauges.append(metrics.MediaFreeCollector(ctx.storage.free_bytes))
        body, content_type = metrics.render(settings, *gauges)
        return Response(body, media_type=content_type)
