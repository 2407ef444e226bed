"""HTTP endpoints of the WeChat channel: the official account's server URL (GET verification, POST messages)
and the JS-SDK configuration for our H5 pages. `install_wechat(app)` also mounts the H5 pages and starts the
embedded schedule (token refresh + notifications) when no Celery beat does it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, Response

from service.adapters.http.schemas import EXACT
from service.certification.context import ServiceContext
from service.certification.errors import ServiceError
from service.features.console.inputs import check_inputs
from service.features.wechat import routes_notices
from service.features.wechat.errors import WeChatError
from service.features.wechat.gauges import WeChatGauges
from service.features.wechat.h5.routes import router as h5_router
from service.features.wechat.runtime import WeChatChannel, build_channel
from service.features.wechat.safe_mode import MAX_CLOCK_SKEW_S, SignatureMismatchError, is_fresh
from service.features.wechat.schedule import ScheduleThread
from service.features.wechat.schemas import JssdkConfig
from service.features.wechat.server import BadMessageError, verify_signature

router = APIRouter(tags=["wechat"])


def channel_of(request: Request) -> WeChatChannel:
    channel: WeChatChannel | None = getattr(request.app.state, "wechat", None)
    if channel is None:
        raise ServiceError("WECHAT_DISABLED", "the WeChat channel is not configured")
    return channel


def _check(channel: WeChatChannel, signature: str, timestamp: str, nonce: str) -> None:
    if not channel.config.token:
        # An empty token makes the signature sha1(timestamp + nonce): anyone could sign. Refuse everything,
        # in every environment (production refuses to start like this: Settings.validate_secrets).
        raise ServiceError("WECHAT_TOKEN_UNSET", "PENSION_CERT_WECHAT_TOKEN is not set")
    if not verify_signature(channel.config.token, signature, timestamp, nonce):
        raise ServiceError("WECHAT_SIGNATURE", "signature does not match")
    if not is_fresh(timestamp):
        # A signed call is only good near the time it was made: a captured one cannot be replayed later.
        raise ServiceError("WECHAT_STALE", f"timestamp more than {MAX_CLOCK_SKEW_S} s from our clock")


@router.get("/wechat/callback", include_in_schema=False)
def verify_server(
    request: Request, signature: str = "", timestamp: str = "", nonce: str = "", echostr: str = ""
) -> Response:
    _check(channel_of(request), signature, timestamp, nonce)
    return PlainTextResponse(echostr)


@router.post("/wechat/callback", include_in_schema=False)
async def receive(
    request: Request,
    signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    encrypt_type: str = "",
    msg_signature: str = "",
) -> Response:
    channel = channel_of(request)
    _check(channel, signature, timestamp, nonce)
    body = await request.body()
    safe = channel.safe_mode
    if (safe is not None) != (encrypt_type == "aes"):
        # Safe mode configured: a plain push is not WeChat's (its signature would not cover the body); not
        # configured: we hold no key to open an encrypted one.
        raise ServiceError("WECHAT_SIGNATURE", "push not in the configured message mode (safe mode or plain text)")
    try:
        if safe is None:
            return Response(channel.handler.reply(body), media_type="application/xml")
        plain = safe.open(body, msg_signature, timestamp, nonce)
        return Response(safe.seal(channel.handler.reply(plain), nonce, timestamp), media_type="application/xml")
    except SignatureMismatchError as exc:
        raise ServiceError("WECHAT_SIGNATURE", str(exc)) from exc
    except BadMessageError as exc:
        raise ServiceError("WECHAT_BAD_MESSAGE", str(exc)) from exc


@router.get(
    "/api/v1/wechat/jssdk-config",
    summary="wx.config() parameters for one of our H5 pages",
    response_model=JssdkConfig,
    **EXACT,
)
def jssdk_config(request: Request, url: str = Query(max_length=1000)) -> JssdkConfig:
    channel = channel_of(request)
    base = channel.config.public_base_url.rstrip("/") + "/h5/"
    if not url.startswith(base):
        raise ServiceError("BAD_URL", "only our H5 pages get a JS-SDK signature")
    try:
        return JssdkConfig.model_validate(channel.api.jssdk_config(url))
    except WeChatError as exc:
        raise ServiceError("WECHAT_UNAVAILABLE", "微信服务暂时不可用,请稍后再试") from exc


def install_wechat(app: FastAPI) -> None:
    ctx: ServiceContext = app.state.ctx
    channel = build_channel(ctx.settings)
    app.state.wechat = channel
    if channel is not None:
        ctx.hooks.gauges["wechat"] = WeChatGauges(ctx, channel.api)  # /metrics: paused, notices for staff
    app.include_router(router)
    app.include_router(h5_router)
    # The console page of the notices staff settle by hand: whether or not WeChat is configured now.
    app.include_router(routes_notices.router, include_in_schema=False, dependencies=[Depends(check_inputs)])
    if channel is None or ctx.settings.workers.worker_mode == "celery":
        return  # off, or Celery beat runs the schedule
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:  # Any: Starlette's lifespan state (free-form)
        schedule = ScheduleThread(ctx, channel, ctx.settings.wechat.schedule_s)
        schedule.start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            schedule.stop()

    app.router.lifespan_context = lifespan
