"""WeChat official-account channel: server URL verification and messages, OAuth (snsapi_base), JS-SDK config,
media download, template messages, with the access token cached and refreshed centrally. Built on wechatpy.
"""

from service.wechat.client import WeChatApi
from service.wechat.config import WeChatConfig
from service.wechat.errors import WeChatError, WeChatMediaExpiredError, WeChatUnavailableError
from service.wechat.oauth import OAuthFlow
from service.wechat.server import MessageHandler, verify_signature
from service.wechat.tokens import MemoryTokenStore, TokenStore

__all__ = [
    "MemoryTokenStore",
    "MessageHandler",
    "OAuthFlow",
    "TokenStore",
    "WeChatApi",
    "WeChatConfig",
    "WeChatError",
    "WeChatMediaExpiredError",
    "WeChatUnavailableError",
    "verify_signature",
]
