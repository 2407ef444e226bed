"""OAuth2 web authorisation with scope snsapi_base (wechatpy's ``WeChatOAuth``): WeChat redirects back with a
code, exchanged for the openid.

The `state` parameter is an HMAC of a per-browser nonce (kept in a cookie by the web layer), so a code minted for
someone else's browser, or a forged redirect, is refused before WeChat is asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import requests
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from service.wechat.config import WeChatConfig
from service.wechat.errors import WeChatError, WeChatUnavailableError


class OAuthStateError(WeChatError):
    def __init__(self) -> None:
        super().__init__(None, "OAuth state does not match this browser")


@dataclass(frozen=True)
class AuthStart:
    url: str  # where to redirect the browser
    nonce: str  # keep in an HttpOnly cookie until the callback


class OAuthFlow:
    def __init__(self, config: WeChatConfig, signing_key: bytes) -> None:
        self.config = config
        self._key = signing_key

    def _state(self, nonce: str) -> str:
        return hmac.new(self._key, f"wechat-oauth:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def _oauth(self, redirect_uri: str, state: str) -> WeChatOAuth:
        oauth = WeChatOAuth(self.config.app_id, self.config.app_secret, redirect_uri, "snsapi_base", state)
        oauth.API_BASE_URL = self.config.api_base_url.rstrip("/") + "/"
        oauth.OAUTH_BASE_URL = self.config.oauth_base_url.rstrip("/") + "/"
        return oauth

    def start(self, redirect_uri: str) -> AuthStart:
        nonce = secrets.token_urlsafe(16)
        return AuthStart(str(self._oauth(redirect_uri, self._state(nonce)).authorize_url), nonce)

    def finish(self, code: str, state: str, nonce: str | None) -> str:
        """Check the state against the browser's nonce, exchange the code; returns the openid."""
        if not nonce or not hmac.compare_digest(state.encode(), self._state(nonce).encode()):
            raise OAuthStateError()
        try:
            data = self._oauth("", state).fetch_access_token(code)
        except WeChatOAuthException as exc:
            if exc.errcode is None:
                raise WeChatUnavailableError(None, str(exc)) from exc
            raise WeChatError(int(exc.errcode), str(exc.errmsg)) from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise WeChatUnavailableError(None, f"oauth2/access_token: {exc}") from exc
        return str(data["openid"])
