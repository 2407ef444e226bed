"""WeChat official-account channel: server URL verification and messages, OAuth (snsapi_base), JS-SDK config,
media download, template messages, with the access token cached and refreshed centrally. Built on wechatpy.
"""

from service.features.wechat.client import WeChatApi
from service.features.wechat.config import WeChatConfig
from service.features.wechat.errors import WeChatError, WeChatMediaExpiredError, WeChatUnavailableError
from service.features.wechat.oauth import OAuthFlow
from service.features.wechat.server import MessageHandler, verify_signature
from service.features.wechat.tokens import MemoryTokenStore, TokenStore

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
