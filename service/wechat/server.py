"""The official account's server URL: signature check (GET verification and every POST) and message handling.

Menu click / subscribe → a link to the certification page; everything else → a short help text.
"""

from __future__ import annotations

from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from service.wechat.config import WeChatConfig

WELCOME = "欢迎关注!每年一次的待遇资格认证可在手机上完成:拍身份证、录一段短视频,一分钟即可。"
HELP = "请点击菜单“资格认证”开始认证;为家人代认证请选择“为家人认证”。"


def verify_signature(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        return False
    return True


class MessageHandler:
    def __init__(self, config: WeChatConfig) -> None:
        self.config = config

    def certify_link(self) -> str:
        return f'<a href="{self.config.public_base_url.rstrip("/")}/h5/">点击开始资格认证</a>'

    def reply(self, xml: bytes | str) -> str:
        """The XML answer to one pushed message or event (plain-text mode)."""
        msg = parse_message(xml)
        if msg.type == "event":
            event = getattr(msg, "event", "")
            if event == "subscribe":
                return str(create_reply(f"{WELCOME}\n{self.certify_link()}", msg).render())
            if event == "click" and getattr(msg, "key", "") == self.config.certify_menu_key:
                return str(create_reply(self.certify_link(), msg).render())
            return "success"  # other events need no answer; WeChat expects "success" or an empty body
        return str(create_reply(f"{HELP}\n{self.certify_link()}", msg).render())
