"""OAuth2 web authorisation with scope snsapi_base (wechatpy's ``WeChatOAuth``): WeChat redirects back with a
code, exchanged for the openid.

The `state` parameter carries the page to return to (hex, WeChat allows only [a-zA-Z0-9] and 128 characters)
followed by an HMAC of that page and a per-browser nonce (kept in a cookie by the web layer): a code minted for
someone else's browser, a forged redirect or an edited target is refused before WeChat is asked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import requests
from wechatpy.exceptions import WeChatOAuthException
from wechatpy.oauth import WeChatOAuth

from service.features.wechat.config import WeChatConfig
from service.features.wechat.errors import WeChatError, WeChatUnavailableError

MAC_LEN = 32
STATE_MAX = 128  # WeChat's limit on `state`
# WeChat's answer to a code exchanged already ("code been used"): a callback loaded twice.
OAUTH_CODE_USED = 40163


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

    def _mac(self, nonce: str, target: str) -> str:
        msg = f"wechat-oauth:{nonce}|{target}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:MAC_LEN]

    def _state(self, nonce: str, target: str) -> str:
        return target.encode().hex() + self._mac(nonce, target)

    def _oauth(self, redirect_uri: str, state: str) -> WeChatOAuth:
        oauth = WeChatOAuth(self.config.app_id, self.config.app_secret, redirect_uri, "snsapi_base", state)
        oauth.API_BASE_URL = self.config.api_base_url.rstrip("/") + "/"
        oauth.OAUTH_BASE_URL = self.config.oauth_base_url.rstrip("/") + "/"
        return oauth

    def start(self, redirect_uri: str, target: str = "/h5/") -> AuthStart:
        """`target`: the page to come back to, already checked by the caller (it must fit the state)."""
        if 2 * len(target.encode()) + MAC_LEN > STATE_MAX:
            raise ValueError("OAuth target too long for the state parameter")
        nonce = secrets.token_urlsafe(16)
        return AuthStart(str(self._oauth(redirect_uri, self._state(nonce, target)).authorize_url), nonce)

    def target_of(self, state: str, nonce: str | None) -> str:
        """The target carried by `state` when its MAC matches this browser's nonce; OAuthStateError otherwise."""
        if not nonce or not state.isascii() or len(state) < MAC_LEN or len(state) > STATE_MAX:
            raise OAuthStateError()
        try:
            target = bytes.fromhex(state[:-MAC_LEN]).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise OAuthStateError() from exc
        if not hmac.compare_digest(state[-MAC_LEN:].encode(), self._mac(nonce, target).encode()):
            raise OAuthStateError()
        return target

    def finish(self, code: str, state: str, nonce: str | None) -> str:
        """Check the state against the browser's nonce, exchange the code; returns the openid."""
        self.target_of(state, nonce)
        try:
            data = self._oauth("", state).fetch_access_token(code)
        except WeChatOAuthException as exc:
            if exc.errcode is None:
                raise WeChatUnavailableError(None, str(exc)) from exc
            raise WeChatError(int(exc.errcode), str(exc.errmsg)) from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise WeChatUnavailableError(None, f"oauth2/access_token: {exc}") from exc
        return str(data["openid"])
