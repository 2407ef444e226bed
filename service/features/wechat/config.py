"""Configuration of the WeChat channel (filled from the service settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

# The total wall-clock time one call to WeChat's API may take (a template send with its token refresh and retry, a
# token fetch), whatever the server does (deadline.py): well under notice_send.STALE_CLAIM, which relies on it.
DEADLINE_S = 120.0


@dataclass(frozen=True)
class WeChatConfig:
    app_id: str
    app_secret: str
    token: str  # the server-URL token configured in the official account's admin console
    public_base_url: str  # our H5 pages, e.g. https://cert.example.gov.cn
    api_base_url: str = "https://api.weixin.qq.com/"
    oauth_base_url: str = "https://open.weixin.qq.com/connect/"
    timeout_s: float = 10.0  # per connect and per read (requests); the whole call: deadline_s
    deadline_s: float = DEADLINE_S
    # Refresh the access token when it has less than this left (WeChat tokens live 7200 s).
    token_refresh_margin_s: int = 300
    # "result", "due_soon", "overdue" → template id (the key mappings: settings, template_fit.keys_of)
    templates: dict[str, str] = field(default_factory=dict)
    certify_menu_key: str = "CERTIFY"
    # The official account's EncodingAESKey (43 characters): pushes are encrypted and signed as a whole (安全模式,
    # service/features/wechat/safe_mode.py); empty: plain-text mode, whose signature does not cover the body.
    encoding_aes_key: str = ""
