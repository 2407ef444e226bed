"""The WeChat channel of one service process, built from the settings: config, API client with the central
token store (Redis when the scale-out broker is Redis, in-process otherwise), OAuth flow, message handler."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from service.features.wechat.client import WeChatApi
from service.features.wechat.config import WeChatConfig
from service.features.wechat.oauth import OAuthFlow
from service.features.wechat.safe_mode import SafeMode
from service.features.wechat.server import MessageHandler
from service.features.wechat.template_fit import TemplateConfigError, template_id
from service.features.wechat.template_fit import check as check_templates
from service.features.wechat.tokens import MemoryTokenStore, RedisTokenStore, TokenStore
from service.infra.config import Settings

log = logging.getLogger(__name__)


def template_problem(settings: Settings) -> str:
    """Why WECHAT_TEMPLATES cannot be used ('' when it can, or the channel is off): the check `wechat_config` makes,
    run among the senders' settings checks (cli/common.settings_problems with ``sends``) so that `serve`, `worker`
    and the Celery worker and beat (tasks.checked_settings) refuse to start on it with one settings line, not a
    WeChat tick failing each time. The other commands never send and do not ask it."""
    if not settings.wechat.app_id:
        return ""
    try:
        check_templates(settings.wechat.templates)
    except TemplateConfigError as exc:
        return exc.problem
    return ""


def wechat_config(settings: Settings) -> WeChatConfig | None:
    """None when the channel is off. Refuses (template_fit.TemplateConfigError: the API and its schedule do not
    start; the commands and the Celery worker and beat refuse it earlier, `template_problem`) a WECHAT_TEMPLATES
    mapping that would fail sends or hide the next step."""
    if not settings.wechat.app_id:
        return None
    check_templates(settings.wechat.templates)
    _warn_classic(tuple(sorted(k for k, entry in settings.wechat.templates.items() if isinstance(entry, str))))
    return WeChatConfig(
        app_id=settings.wechat.app_id,
        app_secret=settings.wechat.app_secret,
        token=settings.wechat.token,
        public_base_url=settings.public_base_url,
        api_base_url=settings.wechat.api_base_url,
        oauth_base_url=settings.wechat.oauth_base_url,
        templates={kind: template_id(entry) for kind, entry in settings.wechat.templates.items()},
        encoding_aes_key=settings.wechat.encoding_aes_key,
    )


@functools.cache
def _warn_classic(kinds: tuple[str, ...]) -> None:
    """Once per process and configuration: a kind in the classic form keeps its old layout (messages.CLASSIC),
    whose title and next step are in first/remark, which WeChat no longer shows."""
    if kinds:
        log.warning(
            "WECHAT_TEMPLATES: %s in the classic form (a template id alone): WeChat no longer shows first/remark, so "
            "the title and the next step are not shown; obtain a category template and configure the mapped form "
            '{"id": ..., "keys": {...}} (docs/wechat.md, "Template messages")',
            ", ".join(kinds),
        )


def token_store(settings: Settings) -> TokenStore:
    # Several processes (API replicas, Celery workers) must share one token; the embedded default is one process.
    if settings.workers.worker_mode == "celery" and settings.workers.broker_url.startswith("redis"):
        return RedisTokenStore(settings.workers.broker_url)
    return MemoryTokenStore()


@dataclass
class WeChatChannel:
    config: WeChatConfig
    api: WeChatApi
    oauth: OAuthFlow
    handler: MessageHandler
    safe_mode: SafeMode | None = None  # None: plain-text mode


def build_channel(settings: Settings, store: TokenStore | None = None) -> WeChatChannel | None:
    config = wechat_config(settings)
    if config is None:
        return None
    api = WeChatApi(config, store or token_store(settings))
    oauth = OAuthFlow(config, signing_key=("wechat-oauth:" + settings.security.signing_key).encode())
    safe_mode = SafeMode(config) if config.encoding_aes_key else None
    return WeChatChannel(config, api, oauth, MessageHandler(config), safe_mode)
